"""The Kiro side: logins (file, refresh, health), the upstream client, the relay, and what keeps them fresh."""
