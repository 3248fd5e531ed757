"""rasa-sdk custom actions: one small class per action; the answering logic lives in bot/."""
