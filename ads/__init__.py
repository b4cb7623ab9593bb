"""Advertisers, campaigns, LoRA adapters, creative drafting and review."""
