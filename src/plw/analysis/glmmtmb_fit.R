# Fit the PLW beta GLMM with glmmTMB. Called by plw/analysis/glmmtmb.py, which owns the contract:
#
#   Rscript glmmtmb_fit.R INPUT.csv OUTDIR NBOOT SEED
#
# INPUT.csv has the (squeezed) response `y`, the grouping factor `benchmark`, and one numeric column
# per fixed effect other than the intercept (`w`, optionally `w2`, and sum-coded nuisance columns
# already built by Python so both sides use the identical design). The model is
#   y ~ <fixed columns> + (1 | benchmark), beta family, logit link
# (no random term when there is one benchmark). Base R only writes the outputs (no jsonlite needed):
#   coef.csv   term, estimate, std_error, z, p_value
#   vcov.csv   covariance of the fixed effects (row names = terms)
#   ranef.csv  benchmark, offset (conditional modes of the random intercepts)
#   info.csv   key, value (convergence, log-likelihoods, phi, variance, versions, warnings)
#   boot.csv   b1, b2 of each converged parametric-bootstrap refit (when NBOOT > 0)

args <- commandArgs(trailingOnly = TRUE)
input <- args[1]
outdir <- args[2]
nboot <- as.integer(args[3])
seed <- as.integer(args[4])

suppressPackageStartupMessages(library(glmmTMB))
d <- read.csv(input, stringsAsFactors = FALSE, check.names = FALSE)
d$benchmark <- factor(d$benchmark)
fixed <- setdiff(names(d), c("y", "benchmark"))
random <- nlevels(d$benchmark) > 1
build_formula <- function(cols) {
  rhs <- paste(cols, collapse = " + ")
  if (random) rhs <- paste(rhs, "+ (1 | benchmark)")
  as.formula(paste("y ~", rhs))
}
form <- build_formula(fixed)

warnings_seen <- character(0)
fit_quiet <- function(f, data) {
  withCallingHandlers(
    glmmTMB(f, data = data, family = beta_family(link = "logit")),
    warning = function(w) {
      warnings_seen <<- c(warnings_seen, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
}

fit <- fit_quiet(form, d)
s <- summary(fit)$coefficients$cond
coef_out <- data.frame(term = rownames(s), estimate = s[, 1], std_error = s[, 2], z = s[, 3], p_value = s[, 4])
write.csv(coef_out, file.path(outdir, "coef.csv"), row.names = FALSE)
write.csv(as.matrix(vcov(fit)$cond), file.path(outdir, "vcov.csv"))

if (random) {
  re <- ranef(fit)$cond$benchmark
  write.csv(data.frame(benchmark = rownames(re), offset = re[, 1]), file.path(outdir, "ranef.csv"), row.names = FALSE)
  re_var <- VarCorr(fit)$cond$benchmark[1, 1]
} else {
  re_var <- NA
}

loglik_linear <- NA
if ("w2" %in% fixed) {
  fit0 <- fit_quiet(build_formula(setdiff(fixed, "w2")), d)
  loglik_linear <- as.numeric(logLik(fit0))
}

grad <- fit$sdr$gradient.fixed
info <- data.frame(
  key = c("optimizer_convergence", "optimizer_message", "pdHess", "max_abs_gradient", "loglik",
          "loglik_linear", "phi", "benchmark_variance", "glmmTMB_version", "R_version", "warnings"),
  value = c(fit$fit$convergence, fit$fit$message, fit$sdr$pdHess,
            if (length(grad)) max(abs(grad)) else 0, as.numeric(logLik(fit)), loglik_linear,
            sigma(fit), re_var, as.character(packageVersion("glmmTMB")), R.version.string,
            paste(unique(warnings_seen), collapse = " | "))
)
write.csv(info, file.path(outdir, "info.csv"), row.names = FALSE)

if (nboot > 0 && "w2" %in% fixed) {
  n <- nrow(d)
  sims <- simulate(fit, nsim = nboot, seed = seed)
  boot <- data.frame(b1 = numeric(0), b2 = numeric(0))
  for (i in seq_len(nboot)) {
    d_star <- d
    # Squeeze the simulated scores exactly as the observed ones were (Smithson & Verkuilen).
    d_star$y <- (sims[[i]] * (n - 1) + 0.5) / n
    refit <- tryCatch(suppressWarnings(glmmTMB(form, data = d_star, family = beta_family(link = "logit"))),
                      error = function(e) NULL)
    if (!is.null(refit) && refit$fit$convergence == 0 && isTRUE(refit$sdr$pdHess)) {
      b <- fixef(refit)$cond
      boot[nrow(boot) + 1, ] <- c(b[["w"]], b[["w2"]])
    }
  }
  write.csv(boot, file.path(outdir, "boot.csv"), row.names = FALSE)
}
