"""Losses: one entry point for the weighted next-token loss (`plw.loss.next_token.NextTokenLoss`),
its full-logit reference and normalisers (`plw.loss.weighted`), and its memory-efficient paths
(`plw.loss.chunked`, `plw.loss.kernels`, with the head swap of `plw.loss.head`)."""
