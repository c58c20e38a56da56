# Reference fit for tests/analysis/test_item_glmm_r.py: the item-level model by lme4.
#
#   Rscript item_glmm_check.R INPUT.csv FAMILY OUT.csv
#
# INPUT.csv: y (0/1 or continuous), w, w2, benchmark, item (unique across benchmarks), cell, and
# optionally seed. FAMILY: binomial (glmer, Laplace, nAGQ = 1, tolPwrss = 1e-12) or gaussian (lmer, ML). Benchmarks are
# sum-coded (contr.sum), as plw codes them. OUT.csv: kind, name, value rows:
#   coef / se       fixed effects and their standard errors (lme4's default vcov)
#   sd              random-intercept sds (item, cell, seed) and the residual sd (gaussian)
#   loglik          the (Laplace / exact ML) log-likelihood
#   converged       1 when lme4 raised no warning (else 0, the warnings as its name)

args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(lme4))
d <- read.csv(args[1], stringsAsFactors = FALSE)
family <- args[2]
d$benchmark <- factor(d$benchmark)
contrasts(d$benchmark) <- contr.sum(nlevels(d$benchmark))
rhs <- "w + w2 + benchmark + (1 | item) + (1 | cell)"
if ("seed" %in% names(d)) rhs <- paste(rhs, "+ (1 | seed)")
form <- as.formula(paste("y ~", rhs))

warned <- character(0)
fit <- withCallingHandlers(
  if (family == "binomial") {
    # A tight inner (PIRLS) tolerance: lme4's default leaves the Laplace log-likelihood ~0.01 short.
    glmer(form, data = d, family = binomial, nAGQ = 1, control = glmerControl(tolPwrss = 1e-12))
  } else {
    lmer(form, data = d, REML = FALSE)
  },
  warning = function(w) {
    warned <<- c(warned, conditionMessage(w))
    invokeRestart("muffleWarning")
  }
)

b <- fixef(fit)
se <- sqrt(diag(as.matrix(vcov(fit))))
vc <- as.data.frame(VarCorr(fit))
out <- rbind(
  data.frame(kind = "coef", name = names(b), value = unname(b)),
  data.frame(kind = "se", name = names(b), value = unname(se)),
  data.frame(kind = "sd", name = vc$grp, value = vc$sdcor),
  data.frame(kind = "loglik", name = "loglik", value = as.numeric(logLik(fit))),
  data.frame(kind = "converged", name = paste(warned, collapse = " | "), value = as.numeric(!length(warned)))
)
write.csv(out, args[3], row.names = FALSE)
