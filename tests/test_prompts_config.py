import re

import pytest

import prompts
from rag.config import Config
from rag.errors import ConfigError


def test_answer_template_loads_with_version_and_fills_only_known_placeholders():
    p = prompts.load("answer")
    assert p.id == "answer@v1"
    messages = p.render(context="[1] code uses {braces} {question}", question="Why?")
    assert messages[0]["role"] == "system" and "cite" in messages[0]["content"].lower()
    assert "[1] code uses {braces} {question}" in messages[1]["content"]  # document braces untouched
    assert "Question: Why?" in messages[1]["content"]


def test_own_template_directory(tmp_path):
    (tmp_path / "terse.md").write_text("---\nname: terse\nversion: 3\n---\n# user\nQ={question}\n")
    p = prompts.load("terse", tmp_path)
    assert p.id == "terse@v3" and p.render(question="x") == [{"role": "user", "content": "Q=x"}]
    with pytest.raises(FileNotFoundError, match="available: answer, .*terse"):  # the folder's and the bundled ones
        prompts.load("missing", tmp_path)
    assert prompts.load("rewrite", tmp_path).name == "rewrite"  # what the folder lacks is the bundled template
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prompts.load("answer", tmp_path / "typo")


def test_config_layers_defaults_toml_env_overrides(workdir, monkeypatch):
    (workdir / "rag.toml").write_text('[rag]\nindex = "from-toml"\ntop_k = 7\nchunk_tokens = 100\n')
    monkeypatch.setenv("RAG_TOP_K", "9")
    monkeypatch.setenv("RAG_EXTENSIONS", ".md,.txt")
    c = Config.load(chunk_tokens=None, llm_model="m")
    assert (c.index, c.top_k, c.chunk_tokens, c.extensions, c.llm_model) == ("from-toml", 9, 100, [".md", ".txt"], "m")


def test_config_round_trips_and_never_serializes_the_api_key(monkeypatch):
    monkeypatch.setenv("RAG_LLM_API_KEY", "sk-secret")
    c = Config.load()
    assert c.llm_api_key.get_secret_value() == "sk-secret"
    data = c.to_dict()
    assert "llm_api_key" not in data and "sk-secret" not in str(data) and "sk-secret" not in repr(c)
    assert Config(**data).to_dict() == data


def test_invalid_config_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_TOP_K", "zero")
    with pytest.raises(ConfigError) as caught:
        Config.load()
    assert str(caught.value) == ("Invalid configuration: top_k (RAG_TOP_K, the config file or an option): Input should be "
                                 "a valid integer, unable to parse string as an integer (got 'zero')")
    monkeypatch.delenv("RAG_TOP_K")
    with pytest.raises(ConfigError, match=r"chunk_tokens .*greater than or equal to 16 \(got 3\)"):
        Config.load(chunk_tokens=3)
    for bad, says in (({"job_llms": {"rewirte": {"base_url": "local"}}}, "'rewrite', 'rerank' or 'judge'"),
                      ({"job_llms": {"rewrite": {"modle": "x"}}}, "'base_url' or 'model'"),
                      ({"prices": {"mine": [1.0]}}, "prices.mine (RAG_PRICES"),
                      ({"price_model": "gpt-5"}, "Invalid configuration: price_model 'gpt-5' has no price: add it to prices")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            Config.load(**bad)
    monkeypatch.setenv("RAG_JOB_LLMS", '{"rewrite": {"base_url": "local"}}')
    monkeypatch.setenv("RAG_PRICES", '{"mine": [1, 2]}')
    assert (Config.load().job_llms, Config.load().prices) == ({"rewrite": {"base_url": "local"}}, {"mine": [1.0, 2.0]})
    assert Config.load(price_model="mine").price_model == "mine"  # priced by the prices setting
    monkeypatch.setenv("RAG_PRICES", "mine=1,2")
    with pytest.raises(ConfigError, match="RAG_PRICES is not JSON"):
        Config.load()
    monkeypatch.delenv("RAG_PRICES")
    monkeypatch.delenv("RAG_JOB_LLMS")
    from rag import Assistant

    with pytest.raises(ConfigError, match="top_k"):  # keyword overrides of a Config are validated too
        Assistant(Config(), top_k="abc")
    assert Assistant(job_llms={"rewrite": {"base_url": "local"}}).config.job_llms == {"rewrite": {"base_url": "local"}}
    from rag.llm import ScriptedChat

    with pytest.raises(ConfigError, match="not both"):
        Assistant(job_llms={"rewrite": ScriptedChat(), "judge": {"base_url": "local"}})
    (tmp_path / "rag.toml").write_text('top_k = 3\nllm_api_key = "a secret"\n')
    with pytest.raises(ConfigError, match="keep secrets out of config files; set RAG_LLM_API_KEY"):
        Config.load(tmp_path / "rag.toml")
    for secret in ({"serve_admin_token": ["a secret"]}, {"serve_admin_tokn": "a secret"}):  # a secret, or a mistyped name
        with pytest.raises(ConfigError) as caught:
            Config.load(**secret)
        assert "a secret" not in str(caught.value)
