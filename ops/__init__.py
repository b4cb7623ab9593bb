"""Operations: worker heartbeats and the figures staff watch."""
