"""A judge behind any OpenAI-compatible chat-completions endpoint, over the standard library's urllib.

The prompt goes as one user message at temperature 0; the reply is read for a verdict string.
The API key comes from the environment variable named in the config (none is sent if it is unset,
which local servers accept). Redirects are followed only within the endpoint's origin (scheme, host and
port): a redirect elsewhere is refused, so the key never reaches a server the config did not name.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit

from plw.errors import PLWError
from plw.evaluation.judges.base import Judge, JudgeConfig, render

MAX_TOKENS = 16  # the verdict is a few words; cap the reply


def parse_verdict(reply: str, verdicts: tuple[str, ...]) -> float | None:
    """1.0 if the reply names verdict (a) first, 0.0 if (b), 0.5 if a tie verdict, None if none."""
    lowered = reply.lower()
    found = [(lowered.find(v.lower()), p) for v, p in zip(verdicts, (1.0, 0.0, 0.5), strict=False)]
    found = [(i, p) for i, p in found if i != -1]
    return min(found)[1] if found else None


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = -1  # a malformed port matches no origin
    return scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects within the request's origin and refuses the others.

    urllib copies every header, Authorization included, onto the redirected request, whatever its
    host: following a redirect to another origin would hand the API key to that server.
    """

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if origin(newurl) != origin(req.full_url):
            fp.close()
            scheme, host, port = origin(newurl)
            raise PLWError(
                f"judge endpoint {self.endpoint}: refused a redirect (HTTP {code}) to another origin, "
                f"{scheme}://{host}:{port}, which would receive the API key; "
                "set base_url to the address you trust"
            )
        if code in (307, 308) and req.get_method() == "POST":
            # 307/308 keep the method and body (urllib would give up on a POST); same origin, same key.
            return urllib.request.Request(
                newurl, req.data, dict(req.headers), origin_req_host=req.origin_req_host, method="POST"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class EndpointJudge(Judge):
    """Judge through `POST {base_url}/chat/completions`.

    Args:
        config: endpoint settings (base_url, model, api_key_env, timeout, max_retries) and prompt.
    """

    def __init__(self, config: JudgeConfig):
        if not config.base_url:
            raise PLWError(f"{config.source}: endpoint judge needs 'base_url'")
        if not config.model:
            raise PLWError(f"{config.source}: endpoint judge needs 'model'")
        self.config = config
        self.name = f"endpoint:{config.model}"
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.opener = urllib.request.build_opener(_SameOriginRedirects(self.url))

    def prefer_a(self, triples: Sequence[tuple[str, str, str]]) -> list[float | None]:
        return [self._judge(render(self.config.prompt, *t)) for t in triples]

    def _judge(self, prompt: str) -> float | None:
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
        }
        reply = self._post(body)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise PLWError(
                f"judge endpoint {self.url}: unexpected response {json.dumps(reply)[:200]}"
            ) from None
        return parse_verdict(content or "", self.config.verdicts)

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        last = ""
        for attempt in range(self.config.max_retries + 1):
            try:
                with self.opener.open(request, timeout=self.config.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                last = f"HTTP {err.code}"
                if err.code in (401, 403):
                    raise PLWError(
                        f"judge endpoint {self.url}: {last} (is ${self.config.api_key_env} set?)"
                    ) from None
                if err.code < 500 and err.code != 429:
                    raise PLWError(f"judge endpoint {self.url}: {last}") from None
            except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as err:
                last = str(getattr(err, "reason", err))
            if attempt < self.config.max_retries:
                time.sleep(min(2**attempt, 30))  # back off on overload and transient failures
        raise PLWError(
            f"judge endpoint {self.url}: failed after {self.config.max_retries + 1} tries ({last})"
        )
