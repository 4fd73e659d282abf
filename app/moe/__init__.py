"""Local MoE backend: text in, tokens with the experts each MoE layer routed them to out.

Usable in-process (``get_engine(model).chat_stream(messages)``) or as an OpenAI-compatible
server (``python -m app.moe serve``). Importing this package is cheap: the engines (torch,
llama.cpp) load on first use.

    from app.moe import get_engine
    engine = get_engine("default")            # SmolLM2, MoEfied: see engine.info.description
    for event in (stream := engine.chat_stream([{"role": "user", "content": "Hi"}])):
        print(event.token, event.experts)      # experts: [layer][k]
    stream.summary.prompt_experts              # (prompt tokens, layers, k)
"""

from app.moe.engine import (
    ChatStream,
    GenerationSummary,
    ModelInfo,
    MoEEngine,
    TokenEvent,
    routing_arrays,
)
from app.moe.errors import (
    ContextTooLong,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
    MoEError,
    TraceDecodeError,
)
from app.moe.registry import default_model_path, get_engine, load_engine, resolve_model
from app.moe.trace import decode_routing, encode_routing

__all__ = [
    "ChatStream",
    "ContextTooLong",
    "EngineUnavailable",
    "GenerationSummary",
    "InvalidRequest",
    "ModelInfo",
    "ModelNotFound",
    "MoEEngine",
    "MoEError",
    "TokenEvent",
    "TraceDecodeError",
    "decode_routing",
    "default_model_path",
    "encode_routing",
    "get_engine",
    "load_engine",
    "resolve_model",
    "routing_arrays",
]
