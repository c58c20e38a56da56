"""Losses: one entry point for the weighted next-token loss (`plw.loss.next_token.NextTokenLoss`),
configured once by `plw.loss.config.LossConfig`; its full-logit reference and normalisers
(`plw.loss.weighted`), and its memory-efficient paths (`plw.loss.chunked`, `plw.loss.kernels`, with
the head swap of `plw.loss.head`)."""
