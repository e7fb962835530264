"""The recipe as the paper meant it (spec §2-§3): bitext targets and drawn languages follow the paper's weighted
93 languages, never a romanized or font variant unless named; source and target differ as languages; every
prompt carries each instruction of the spec (keyed by meaning: any of a few phrasings counts) and none of the
rewordings that asked for something else; draws of two tasks with one seed are apart."""

from collections import Counter

import pytest
from helpers import run_synthkit
from omegaconf import OmegaConf

import synthkit
from synthkit.engine.plan import units_of
from synthkit.errors import UserError
from synthkit.spec.languages import VARIANTS, same_language
from synthkit.spec.task import TaskSpec

PAPER = synthkit.compose("llm=mock").languages
MIX = OmegaConf.to_container(PAPER.e5_mix, resolve=True)
WEIGHTS = {name: MIX["weights"].get(name, MIX["other_weight"]) for name in MIX["values"]}


def expected_targets(sources: dict) -> dict:
    """The paper's weights over the languages other than the source, averaged over the sources' shares."""
    shares = Counter()
    for source, p in sources.items():
        others = {t: w for t, w in WEIGHTS.items() if t != source}
        for target, w in others.items():
            shares[target] += p * w / sum(others.values())
    return shares


def assert_follows(drawn: list, expected: dict) -> None:
    counts = Counter(drawn)
    assert set(counts) <= set(WEIGHTS), set(counts) - set(WEIGHTS)
    for language, share in expected.items():
        assert abs(counts[language] / len(drawn) - share) < 0.01, (language, counts[language] / len(drawn), share)


def test_recipe_bitext_targets_follow_the_papers_weights_and_are_never_variants():
    # num_rows such that the recipe's bitext share is about 30,000 rows.
    cfg = synthkit.compose("llm=mock", "recipe=e5", "num_rows=171000")
    units = [u for u in units_of(cfg) if u.key.startswith("bitext_retrieval/")]
    rows = sum(u.rows for u in units)
    assert 29_000 < rows < 31_000
    targets, sources = [], Counter()
    for unit in units:
        spec = TaskSpec(unit.task, cfg.preset)
        for row in range(unit.rows):
            drawn = spec.draw_attributes(cfg.seed, row, stream=unit.key)
            assert not same_language(drawn["target_language"], drawn["source_language"]), drawn
            targets.append(drawn["target_language"])
        sources[unit.task["source_language"]] += unit.rows
    assert not set(targets) & set(VARIANTS)
    assert_follows(targets, expected_targets({s: n / rows for s, n in sources.items()}))
    assert Counter(targets)["English"] / rows > 0.2  # the weights, not the even 1/92 of the list


def test_recipe_targets_come_from_the_recipes_languages_also_under_the_paper_preset():
    cfg = synthkit.compose("llm=mock", "recipe=e5", "num_rows=3000", "preset=paper", "recipe.languages=[English,de,fr]")
    targets = Counter()
    assert {u.key.split("/")[1] for u in units_of(cfg)} == {"English", "German", "French"}  # one name each
    for unit in units_of(cfg):
        if unit.key.startswith("bitext_retrieval/"):
            spec = TaskSpec(unit.task, cfg.preset)
            targets.update(spec.draw_attributes(0, row, stream=unit.key)["target_language"] for row in range(unit.rows))
    assert set(targets) == {"English", "German", "French"}  # not the preset's 93


def test_paper_preset_draws_source_and_target_from_the_papers_weights():
    cfg = synthkit.compose("llm=mock", "preset=paper", "task.source_language=null")
    spec = TaskSpec(cfg.task, cfg.preset)
    drawn = [spec.draw_attributes(0, row) for row in range(30_000)]
    assert all(not same_language(d["source_language"], d["target_language"]) for d in drawn)
    total = sum(WEIGHTS.values())
    assert_follows([d["source_language"] for d in drawn], {k: w / total for k, w in WEIGHTS.items()})
    assert_follows([d["target_language"] for d in drawn], expected_targets({k: w / total for k, w in WEIGHTS.items()}))


@pytest.mark.parametrize("task", ["text_retrieval", "text_classification", "monolingual_triplet"])
def test_every_drawn_language_follows_the_paper_under_the_preset(task):
    definition = ["task.task=x"] if task != "monolingual_triplet" else []
    cfg = synthkit.compose("llm=mock", f"task={task}", *definition, "task.language=null", "preset=paper")
    spec = TaskSpec(cfg.task, cfg.preset)
    total = sum(WEIGHTS.values())
    drawn = [spec.draw_attributes(0, row)["language"] for row in range(30_000)]
    assert_follows(drawn, {k: w / total for k, w in WEIGHTS.items()})


def test_seed_draws_skip_variants_and_one_language_under_two_names():
    cfg = synthkit.compose("llm=mock", "task.source_language=Chinese")
    spec = TaskSpec(cfg.task, cfg.preset)
    targets = Counter(spec.draw_attributes(0, row)["target_language"] for row in range(20_000))
    assert not set(targets) & set(VARIANTS)  # Chinese (Traditional) and the romanized / font forms
    assert not any(same_language(t, "Chinese") for t in targets)
    assert len(targets) == 92  # the other 92 of the paper's languages, under one name each
    assert "Chinese (Simplified)" not in TaskSpec(synthkit.compose("llm=mock").task).attributes[0].values


@pytest.mark.parametrize(
    "source,target",
    [
        ("Chinese", "Chinese (Simplified)"),
        ("zh", "Chinese (Traditional)"),
        ("Hindi", "Hindi Romanize"),
        ("de", "german"),
    ],
)
def test_source_and_target_are_compared_as_languages(source, target):
    cfg = synthkit.compose("llm=mock")
    task = OmegaConf.to_container(cfg.task, resolve=True)
    with pytest.raises(UserError, match="must differ from task.source_language"):
        TaskSpec({**task, "source_language": source, "target_language": target})


def test_a_fixed_target_steers_the_drawn_source_away_from_its_language():
    cfg = synthkit.compose("llm=mock", "task.source_language=null", "task.target_language=Hindi Romanize")
    spec = TaskSpec(cfg.task, cfg.preset)
    drawn = [spec.draw_attributes(0, row) for row in range(3000)]
    assert {d["target_language"] for d in drawn} == {"Hindi Romanize"}  # a variant, named by the user
    assert not any(same_language(d["source_language"], "Hindi") for d in drawn)
    assert spec.expected_shares()["source_language"].get("Hindi", 0) == 0


def test_variants_are_drawn_where_the_user_names_them():
    cfg = synthkit.compose("llm=mock", "task.target_language=[Tamil Romanize,Burmese zawgyi font]")
    spec = TaskSpec(cfg.task, cfg.preset)
    assert {spec.draw_attributes(0, row)["target_language"] for row in range(200)} == {
        "Tamil Romanize",
        "Burmese zawgyi font",
    }
    # ...also under preset=paper, whose 93 hold their base languages.
    paper = synthkit.compose("llm=mock", "preset=paper", "task.target_language=Urdu Romanize")
    assert TaskSpec(paper.task, paper.preset).draw_attributes(0, 0)["target_language"] == "Urdu Romanize"


def test_a_narrowed_list_that_leaves_nothing_to_draw_is_refused():
    cfg = synthkit.compose("llm=mock", "task.source_language=[German]", "task.target_language=[de]")
    with pytest.raises(UserError, match="no value of"):
        TaskSpec(cfg.task, cfg.preset)


# 29.5: two tasks' runs with one seed draw apart.


def test_two_tasks_with_one_seed_draw_apart():
    sts = TaskSpec(synthkit.compose("llm=mock", "task=monolingual_triplet").task)
    bitext = TaskSpec(synthkit.compose("llm=mock", "task=bitext_retrieval").task)
    keys = ("unit", "difficulty", "high_score", "low_score")  # the same names and domains in both tasks
    same = sum(
        all(sts.draw_attributes(0, row)[k] == bitext.draw_attributes(0, row)[k] for k in keys) for row in range(500)
    )
    assert same < 50  # chance alone: 1 in 81; one generator per (seed, row, attribute) made it all 500


# 29.2-29.4: each prompt carries every instruction of the spec, in any of a few phrasings, and none of the
# rewordings that asked for something else.

CREATIVE = ["be creative"]
NO_EXPLANATION = ["do not explain yourself", "no explanation", "without explaining"]
JSON_ONLY = ["json object only", "only a json object", "only the json object"]

INSTRUCTIONS = {
    "text_retrieval": (
        [
            "task.task=Find recipes for a dish",
            "task.language=Swahili",
            "task.query_type=long-tail",
            "task.query_length=5 to 15 words",
            "task.difficulty=PhD",
            "task.clarity=ambiguous",
            "task.num_words=300",
        ],
        {
            "the task definition": ["find recipes for a dish"],
            "the query's type, length and clarity": ["long-tail, 5 to 15 words, ambiguous"],
            "a topically diverse query": ["diverse in topic", "diverse topics"],
            "documents independent of the query": ["independently of the query", "independent of the query"],
            "no verbatim copy of the query": ["word for word", "verbatim"],
            "the positive may hold off-topic content": [
                "off the topic",
                "not topically related",
                "not about the query",
            ],
            "at least num_words words": ["at least 300 words"],
            "a less useful hard negative": ["less useful or less complete", "less useful or comprehensive"],
            "all in the language": ["written in swahili", "in swahili"],
            "no explanation of relevance": ["explain inside any document", "no explanation in any document"],
            "difficulty-level education": ["phd level education"],
            "JSON only": JSON_ONLY,
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        },
        ["restate", "do not copy or"],
    ),
    "short_text_matching": (
        ["task.task=Match a word to its definition", "task.language=German"],
        {
            "the task definition": ["match a word to its definition"],
            "both very short": ["very short: a sentence or a phrase", "very short (a sentence or a phrase)"],
            "little word overlap": ["avoid substantial word overlap", "little word overlap"],
            "independent of each other": ["independently of each other", "independent of each other"],
            "in the language": ["written in german"],
            "JSON only": JSON_ONLY,
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        },
        ["share few words"],
    ),
    "long_text_matching": (
        ["task.task=Match an argument to its rebuttal", "task.language=French"],
        {
            "the task definition": ["match an argument to its rebuttal"],
            "both long": ["long documents of at least 300 words"],
            "little word overlap": ["avoid substantial word overlap", "little word overlap"],
            "independent of each other": ["independently of each other", "independent of each other"],
            "in the language": ["written in french"],
            "JSON only": JSON_ONLY,
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        },
        ["share few words"],
    ),
    "text_classification": (
        [
            "task.task=Classify reviews by sentiment",
            "task.language=Polish",
            "task.difficulty=PhD",
            "task.clarity=clear",
        ],
        {
            "the task definition": ["classify reviews by sentiment"],
            "a valid but less fitting misleading label": ["valid label of this same task", "valid label for the"],
            "less fitting than the label": ["less well than", "not as appropriate"],
            "no label in the text": ["neither label appears in input_text"],
            "clarity": ["input_text is clear"],
            "difficulty-level education": ["phd level education"],
            "diverse expression": ["diverse in its expression", "diverse in expression"],
            "in the language": ["written in polish"],
            "JSON only": JSON_ONLY,
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        },
        ["from one example to the next", "topic"],
    ),
    "monolingual_triplet": (
        [
            "task.language=Japanese",
            "task.unit=passage",
            "task.difficulty=college",
            "task.high_score=4.5",
            "task.low_score=2.5",
        ],
        {
            "the unit and the language": ["passage in japanese", "passages in japanese"],
            "the scale and its direction": ["1 is the least similar and 5 the most similar"],
            "sim(S1, S2) = high_score": ["between s1 and s2 is 4.5"],
            "sim(S1, S3) = low_score": ["between s1 and s3 is 2.5"],
            "shared words": ["share some words"],
            "difficulty-level education": ["college level education"],
            "diverse topics and lengths": ["diverse topics and lengths"],
            "the keys": ['"s1", "s2" and "s3"'],
            "JSON only": JSON_ONLY,
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        },
        [],
    ),
    "bitext_retrieval": (
        [
            "task.source_language=Thai",
            "task.target_language=Welsh",
            "task.unit=phrase",
            "task.difficulty=elementary school",
            "task.high_score=5",
            "task.low_score=3.5",
        ],
        {
            "S1 in the source language": ["s1 is a phrase in thai"],
            "S2 and S3 in the target language": ["s2 and s3 are phrases in welsh"],
            "the scale and its direction": ["higher is better", "higher scores are better"],
            "S2 scores high_score": ["s2 scores 5"],
            "S3 scores low_score": ["s3 scores 3.5"],
            "S2 and S3 share words": ["s2 and s3 share some words"],
            "a grammatical, fluent but flawed S3": ["grammatical and fluent"],
            "its flaws": ["mistranslates keywords or numbers"],
            "omissions or additions": ["leaves some information out, or adds information"],
            "difficulty-level education": ["elementary school level education"],
            "diverse topics and lengths": ["diverse topics and lengths"],
            "JSON only": JSON_ONLY,
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        },
        [],
    ),
    "grounded_retrieval": (
        ["corpus=CORPUS", "task.query_type=natural question", "task.language=English"],
        {"JSON only": JSON_ONLY, "do not explain yourself": NO_EXPLANATION, "be creative": CREATIVE},
        [],
    ),
}

BRAINSTORM = {
    "text-retrieval": (
        {
            "what query and documents are": ["what the query is and what the desired documents are"],
            "broad, not specific": ["wide range of queries", "not be too specific", "none is too specific"],
            "example: a scientific claim": ["scientific claim"],
            "example: children's nutrition FAQ": ["nutrition for children", "children's nutrition"],
        },
        [],
    ),
    "text-matching-short": (
        {
            "both very short": ["very short (one or two sentences, or even just a short phrase)"],
            "example: citing titles of a scientific paper": ["title of a scientific paper", "scientific paper title"],
            "example: a word's definition": ["match a word to its definition"],
            "example: a person's occupation": ["notable person", "famous person"],
        },
        [],
    ),
    "text-matching-long": (
        {
            "queries are long documents": ["queries are long documents"],
            "example: a document for a debatable argument": ["document that argues one side of a debatable question"],
            "example: a lengthy business proposal": ["lengthy business proposal"],
        },
        [],
    ),
    "text-classification": (
        {"diverse domains and task types": ["diverse range of domains and kinds of classification"]},
        # The paper gives no examples here: examples of sentiment or topic tasks pull the list towards them.
        ["sentiment", "topic", "example", "- classify", "- identify"],
    ),
}
for category, (needles, refused) in BRAINSTORM.items():
    needles.update(
        {
            "about 20 one-sentence tasks": ["about 20 tasks, each a distinct task described in one sentence"],
            "JSON list only": ["json list of strings only"],
            "do not explain yourself": NO_EXPLANATION,
            "be creative": CREATIVE,
        }
    )
    INSTRUCTIONS[f"brainstorm/{category}"] = (["task=brainstorm", f"task.category={category}"], needles, refused)


def dry_run_prompt(overrides: list, tmp_path) -> str:
    result = run_synthkit("llm=mock", "dry_run=true", "num_rows=2", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    prompt = result.stdout.split("prompt of row 0:")[1].split("schema of the answer:")[0]
    return " ".join(prompt.split()).lower()


@pytest.mark.parametrize("name", INSTRUCTIONS)
def test_every_prompt_carries_every_instruction_of_the_spec(name, tmp_path):
    overrides, instructions, refused = INSTRUCTIONS[name]
    if not name.startswith("brainstorm/"):
        overrides = [f"task={name}", *overrides]
    if "corpus=CORPUS" in overrides:
        corpus = tmp_path / "notes.txt"
        corpus.write_text("Bees tell each other where food is with a dance. " * 20, encoding="utf-8")
        overrides = [f"corpus={corpus}" if o == "corpus=CORPUS" else o for o in overrides]
    prompt = dry_run_prompt(overrides, tmp_path)
    missing = [meaning for meaning, phrases in instructions.items() if not any(p in prompt for p in phrases)]
    assert missing == [], prompt
    said = [phrase for phrase in refused if phrase in prompt]
    assert said == [], prompt


def test_the_paper_preset_asks_for_the_classification_text_length(tmp_path):
    prompt = dry_run_prompt(
        ["task=text_classification", "task.task=x", "task.paper.num_words=at least 50", "preset=paper"], tmp_path
    )
    assert "input_text has at least 50 words" in prompt
