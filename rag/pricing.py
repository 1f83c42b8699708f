"""What an answer costs: USD per million input and output tokens, per model.

The defaults are published list prices (OpenAI for GPT-4 8K and GPT-3.5-Turbo-0125;
Anyscale Endpoints for Llama 2, the figures the Ray assistant reference project used).
Prices change: override or extend them with the `prices` setting. A model with no price
(the embedded local model, your own vLLM) costs 0.
"""

from __future__ import annotations

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "meta-llama/Llama-2-7b-chat-hf": (0.15, 0.15),
    "meta-llama/Llama-2-13b-chat-hf": (0.25, 0.25),
    "meta-llama/Llama-2-70b-chat-hf": (1.00, 1.00),
}


def price_table(overrides: dict[str, list[float]] | None = None) -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PRICES)
    for name, pair in (overrides or {}).items():
        table[name] = (float(pair[0]), float(pair[1]))
    return table


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, table: dict[str, tuple[float, float]]) -> float:
    """The cost of one call, or 0 for an unpriced model."""
    price = table.get(model)
    if price is None:
        return 0.0
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
