"""Data: records from files or the hub, rendered with a template, tokenised with per-token weights."""
