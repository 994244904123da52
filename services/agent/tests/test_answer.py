"""Code and explanation from a model's final answer, whatever shape the Markdown takes."""

from __future__ import annotations

import pytest

from llmagg_agent.domain.answer import FinalAnswer, extract

FACTORIAL = "def factorial(n):\n    return 1 if n == 0 else n * factorial(n - 1)"


def test_one_block_and_the_text_around_it():
    answer = f"Here it is:\n\n```python\n{FACTORIAL}\n```\n\nIt recurses down to 0."
    assert extract(answer, "python") == FinalAnswer(FACTORIAL, "Here it is:\n\nIt recurses down to 0.")


def test_blocks_in_the_language_asked_for_are_the_code_others_stay_in_the_explanation():
    answer = "Install it:\n```bash\npip install x\n```\nThen:\n```py\nimport x\n```\nand\n```python\nx.run()\n```"
    result = extract(answer, "python")
    assert result.generated_code == "import x\n\nx.run()"
    assert result.explanation == "Install it:\n```bash\npip install x\n```\nThen:\nand"


def test_without_a_language_the_longest_blocks_language_wins():
    answer = "```sh\nnpm i\n```\n```javascript\nfunction greet(name) {\n  return `Hi ${name}`;\n}\n```"
    result = extract(answer, None)
    assert result.generated_code == "function greet(name) {\n  return `Hi ${name}`;\n}"
    assert result.explanation == "```sh\nnpm i\n```"


def test_an_unterminated_block_runs_to_the_end():
    assert extract("Code:\n```js\nconst a = 1;\nconst b", "javascript") == FinalAnswer("const a = 1;\nconst b", "Code:")


@pytest.mark.parametrize(
    "answer",
    [
        "~~~python\nprint(1)\n~~~",
        "````python title='a.py'\nprint(1)\n````",
        "  ```Python\nprint(1)\n  ```",
        "```python\r\nprint(1)\r\n```\r\n",
    ],
)
def test_fence_styles(answer):
    assert extract(answer, "python").generated_code == "print(1)"


def test_a_longer_fence_keeps_inner_fences_as_code():
    answer = "````markdown\n```python\nx = 1\n```\n````"
    assert extract(answer, "markdown").generated_code == "```python\nx = 1\n```"


def test_a_json_answer_is_read_by_its_keys():
    answer = '{"generated_code": "x = 1", "explanation": "Sets x."}'
    assert extract(answer, "python") == FinalAnswer("x = 1", "Sets x.")
    assert extract('{"code": "y = 2"}', None) == FinalAnswer("y = 2", None)
    assert extract('{"answer": 42}', None) == FinalAnswer(None, '{"answer": 42}')


def test_text_only_or_nothing():
    assert extract("I wrote the file src/x.py for you.", "python") == FinalAnswer(
        None, "I wrote the file src/x.py for you."
    )
    assert extract(None) == extract("  \n") == FinalAnswer(None, None)
    assert extract("```python\n\n```\nNothing to add.", "python") == FinalAnswer(None, "Nothing to add.")
