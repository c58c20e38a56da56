"""The narrow model interface every task talks to, and a dummy implementation for tests.

Modelled on lm-evaluation-harness's `LM`: a task only ever asks for log-likelihoods of
continuations given contexts, or for greedy generations. The grouped variant exists so an
implementation can score all choices of a multiple-choice question from one pass over their
shared context; its default just flattens the groups.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

from plw.errors import PLWError

Request = tuple[str, str]
"""(context, continuation): score log P(continuation | context)."""

Score = tuple[float, bool]
"""(summed log-probability of the continuation, whether greedy decoding would produce it)."""


class EvalLM(ABC):
    """A model as the evaluation tasks see it.

    Attributes:
        name: a short identifier recorded with results (model spec, path or class name).
    """

    name: str = "model"

    @abstractmethod
    def loglikelihood(self, requests: Sequence[Request]) -> list[Score]:
        """Score each continuation given its context.

        Args:
            requests: (context, continuation) pairs; the continuation carries its own leading space.

        Returns:
            One (logprob, is_greedy) per request, in order.
        """

    def loglikelihood_grouped(self, groups: Sequence[Sequence[Request]]) -> list[list[Score]]:
        """Score groups of requests that usually share a context (the choices of one question).

        Same numbers as `loglikelihood` on the flattened list; implementations override it to reuse
        the shared context's computation.
        """
        flat = [req for group in groups for req in group]
        scores = iter(self.loglikelihood(flat))
        return [[next(scores) for _ in group] for group in groups]

    @abstractmethod
    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 256, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy continuations of each prompt, cut before the first stop string.

        Args:
            prompts: raw prompt texts (any template already applied).
            max_new_tokens: generation budget per prompt.
            stop: strings that end a generation; the returned text excludes them.
        """

    @property
    def has_chat_template(self) -> bool:
        """Whether `apply_chat_template` works."""
        return False

    def apply_chat_template(self, user_message: str) -> str:
        """The prompt that asks the model to answer one user message in its chat format."""
        raise PLWError(
            f"model '{self.name}' has no chat template; use template 'alpaca' or 'none', "
            "or give one with --chat-template"
        )


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (excluding) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s and (i := text.find(s)) != -1:
            cut = min(cut, i)
    return text[:cut]


class DummyLM(EvalLM):
    """A model with hand-set answers, so tests can compute every score by hand.

    Args:
        logprobs: maps (context, continuation) to a log-probability, or is a function of the two.
            Unknown pairs default to `-len(continuation)` (the shortest continuation wins).
        greedy: function (context, continuation) -> is_greedy; default: always False.
        responses: maps a prompt to its generation, or is a function of the prompt. Unknown prompts
            generate "".

    Attributes:
        calls: every request/prompt seen, in order, for assertions.
    """

    name = "dummy"

    def __init__(
        self,
        logprobs: Mapping[Request, float] | Callable[[str, str], float] | None = None,
        greedy: Callable[[str, str], bool] | None = None,
        responses: Mapping[str, str] | Callable[[str], str] | None = None,
    ):
        self._logprobs = logprobs if logprobs is not None else {}
        self._greedy = greedy or (lambda context, continuation: False)
        self._responses = responses if responses is not None else {}
        self.calls: list[object] = []

    def _logprob(self, context: str, continuation: str) -> float:
        if callable(self._logprobs):
            return float(self._logprobs(context, continuation))
        return float(self._logprobs.get((context, continuation), -len(continuation)))

    def loglikelihood(self, requests: Sequence[Request]) -> list[Score]:
        self.calls.extend(requests)
        return [(self._logprob(c, x), bool(self._greedy(c, x))) for c, x in requests]

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 256, stop: Sequence[str] = ()
    ) -> list[str]:
        self.calls.extend(prompts)
        if callable(self._responses):
            texts = [self._responses(p) for p in prompts]
        else:
            texts = [self._responses.get(p, "") for p in prompts]
        return [cut_at_stop(t, stop) for t in texts]

    @property
    def has_chat_template(self) -> bool:
        return True

    def apply_chat_template(self, user_message: str) -> str:
        return f"<user>{user_message}</user><assistant>"
