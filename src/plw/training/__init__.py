"""Training: PLW trainers, regularisers, and the `plw train` job."""
