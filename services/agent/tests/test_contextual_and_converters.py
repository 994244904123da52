"""The contextual chat's request to the router, and the agent's answers as protobuf (absent, not empty, when unset)."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from llmagg.agent.v1 import agent_pb2 as pb
from llmagg.common.errors import ServiceError
from llmagg_agent import converters
from llmagg_agent.domain.contextual import ContextualChat, chat_body, fenced
from llmagg_agent.domain.threads import AgentStatus, HumanInput, Thread


def test_the_prompt_carries_the_selection_and_the_active_file_cut_to_the_limit():
    request = ContextualChat(
        prompt="Why?",
        selected_text="x = 1",
        active_file_content="a" * 30,
        active_file_name="m.py",
        language="python",
        provider="groq",
        model_quality="fastest",
        max_tokens=9,
        stop=["END"],
    )
    body = chat_body(request, max_file_chars=10)
    assert body == {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": "Why?\n\n## Selected code from m.py\n```python\nx = 1\n```\n\n"
                "## Active file m.py (its first 10 of 30 characters)\n```python\naaaaaaaaaa\n```",
            }
        ],
        "stream": False,
        "provider": "groq",
        "model_quality": "fastest",
        "max_tokens": 9,
        "stop": ["END"],
    }


def test_only_the_prompt_is_needed_and_it_must_say_something():
    assert chat_body(ContextualChat(prompt="Hi", stream=True), 100) == {
        "model": "auto",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }
    with pytest.raises(ServiceError) as empty:
        chat_body(ContextualChat(prompt="  "), 100)
    assert empty.value.code == "invalid_prompt"
    with pytest.raises(ServiceError) as quality:
        chat_body(ContextualChat(prompt="Hi", model_quality="cheap"), 100)
    assert quality.value.code == "invalid_model_quality"


def test_code_with_backticks_gets_a_longer_fence():
    assert fenced("a ``` b", "md") == "````md\na ``` b\n````"


def test_optional_request_fields_left_out_are_none():
    request = converters.invoke_request(pb.InvokeCodeAgentRequest(instruction="x", language="go"))
    assert request.params() == {
        "instruction": "x",
        "context": None,
        "language": "go",
        "project_directory": None,
        "thread_id": None,
        "model_quality": None,
        "provider": None,
    }


def test_a_response_has_only_the_fields_that_are_set():
    thread = Thread("t", status=AgentStatus.REQUIRES_HUMAN_INPUT, request_params={"instruction": "x", "context": None})
    thread.human_input = HumanInput("c1", "Sure?")
    thread.model_used = "p/m"
    as_json = json_format.MessageToDict(converters.code_agent_response(thread), preserving_proto_field_name=True)
    assert as_json == {
        "agent_status": "requires_human_input",
        "human_input_request": {"tool_call_id": "c1", "question_for_human": "Sure?"},
        "request_params": {"instruction": "x", "context": None},
        "model_used": "p/m",
        "thread_id": "t",
    }
