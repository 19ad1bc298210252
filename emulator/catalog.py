"""The fixed cast of the synthetic world: models, agents, tools, words and odd texts."""

import hashlib
from dataclasses import dataclass

MODELS = (
    "mistral-large-latest",
    "mistral-medium-2505",
    "mistral-small-latest",
    "magistral-medium-latest",
    "codestral-latest",
    "ministral-8b-latest",
)


@dataclass(frozen=True)
class Agent:
    """An agent the synthetic conversations talk to; ids do not depend on the seed."""

    id: str
    name: str
    model: str


def _agent(name: str, model: str) -> Agent:
    digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    return Agent(id=f"ag_{digest}", name=name, model=model)


AGENTS = (
    _agent("Support triage", "mistral-medium-2505"),
    _agent("Research assistant", "mistral-large-latest"),
    _agent("Code reviewer", "codestral-latest"),
    _agent("Travel planner", "mistral-small-latest"),
    _agent("Billing helper", "ministral-8b-latest"),
)
AGENTS_BY_ID = {agent.id: agent for agent in AGENTS}
DEFAULT_AGENT_MODEL = "mistral-medium-latest"

BUILT_IN_CONNECTORS = ("web_search", "web_search_premium", "code_interpreter", "image_generation")

FUNCTION_TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by its number.",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}},
                "required": ["order_id"],
            },
        },
    },
)

CONNECTOR_TOOLS = (
    {"type": "web_search"},
    {"type": "code_interpreter"},
    {"type": "image_generation"},
    {"type": "document_library", "library_ids": ["0195d8a6-63b7-7c4e-8a3b-2f4c1d9e0a11"]},
)

_WORD_TEXT = (
    "the order shipped yesterday and should arrive within three business days please check "
    "your account settings before retrying the payment our team can help with refunds "
    "invoices billing plans upgrades and migrations this answer summarises the main points "
    "from the documentation you shared including limits quotas regions latency models "
    "agents tools connectors libraries embeddings streaming tokens context window weather "
    "forecast flight hotel itinerary museum ticket budget review pull request function test "
    "coverage deploy rollback incident metrics dashboard query report export schedule"
)
WORDS = tuple(_WORD_TEXT.split())

UNICODE_TEXTS = (
    "Résumé naïve café, déjà vu — «guillemets» et cœur.",
    "日本語のテキストと漢字、そして絵文字 🚀✨🤖",
    "Ελληνικά, русский текст, עברית, العربية",
    "Math: ∑ xᵢ² ≤ ∞, ∀ε>0 ∃δ; tabs\tand\nnew lines",
    "Zero-width​joiner, combining e\u0301, surrogate-pair 𝄞 and NUL\u0000 inside",
)

CITIES = ("Paris", "Lyon", "Tokyo", "Montréal", "São Paulo", "Zürich")
