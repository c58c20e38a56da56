"""Losses: the weighted next-token loss and its memory-efficient chunked form."""
