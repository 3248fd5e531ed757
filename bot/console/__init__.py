"""What the web process's staff console works with: tickets, regional issues, knowledge editing
(service.py) and staff accounts with the audit log (accounts.py). Loads no encoders."""
