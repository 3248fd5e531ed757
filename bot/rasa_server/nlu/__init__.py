"""Rasa components for Japanese (imported only inside the Rasa server's environment)."""
