"""Values as people write them (issue 27.4): attribute values case-insensitively, languages by any name, ISO
code or the card's own code, one name per language, and a "did you mean" for a near miss, of a value or a key."""

import pytest
from helpers import assert_one_line_error, run_synthkit
from omegaconf import OmegaConf

import synthkit
from synthkit.errors import UserError
from synthkit.spec.langid import CODES, language_code
from synthkit.spec.languages import LANGUAGES, VARIANTS, base_language, close_names, iso_code, resolve
from synthkit.spec.task import TaskSpec

LISTS = OmegaConf.to_container(synthkit.compose("llm=mock").languages, resolve=True)


def fixed(*overrides: str) -> dict:
    """The attribute values a run with these overrides draws for row 0."""
    cfg = synthkit.compose("llm=mock", *overrides)
    return TaskSpec(cfg.task, cfg.preset).draw_attributes(0, 0)


# The registry: one home for names, codes and aliases.


def test_the_registry_names_the_papers_93_and_xlmrs_variants():
    assert list(LANGUAGES) == LISTS["paper"]
    # XLM-R's 100 names: the 93 (its two Chinese entries one of them, its Traditional a variant) and 6 variants.
    assert {resolve(name) for name in LISTS["xlmr"]} == set(LANGUAGES) | set(VARIANTS)
    assert len(set(LANGUAGES) | set(VARIANTS)) == 100 and resolve("Chinese (Simplified)") == "Chinese"


def test_the_language_check_and_the_card_read_the_registrys_codes():
    assert set(CODES) == set(LANGUAGES) | set(VARIANTS)
    for name in CODES:
        assert language_code(name)[0] == iso_code(name), name
    assert language_code("Chinese (Simplified)") == language_code("zh") == language_code("Chinese")


@pytest.mark.parametrize(
    "written,name",
    [
        ("german", "German"),
        ("GERMAN", "German"),
        ("de", "German"),
        ("deu", "German"),
        ("zh", "Chinese"),
        ("Chinese (Simplified)", "Chinese"),
        ("zh-Hans", "Chinese"),
        ("zh_TW", "Chinese (Traditional)"),
        ("pt-BR", "Portuguese"),
        ("en-US", "English"),
        ("tl", "Filipino"),  # the card's own tag for Filipino
        ("Tagalog", "Filipino"),
        ("Farsi", "Persian"),
        ("kurdish", "Kurdish (Kurmanji)"),
        ("hindi romanize", "Hindi Romanize"),
        ("hi-Latn", "Hindi Romanize"),
    ],
)
def test_names_codes_and_aliases_resolve_to_one_name(written, name):
    assert resolve(written) == name


def test_variants_count_as_their_base_language():
    assert base_language("Tamil Romanize") == "Tamil" and base_language("Chinese (Traditional)") == "Chinese"
    assert iso_code("Burmese zawgyi font") == "my" and iso_code("Klingon") is None


def test_close_names_of_a_misspelt_language():
    assert close_names("Germn", LANGUAGES) == ["German"]
    assert close_names("Portugese", LANGUAGES)[0] == "Portuguese"
    assert close_names("Klingon", LANGUAGES) == []


# Attribute values as a task reads them.


@pytest.mark.parametrize(
    "override,name,value",
    [
        ("task.difficulty=College", "difficulty", "college"),
        ("task.difficulty=HIGH SCHOOL", "difficulty", "high school"),
        ("task.difficulty=high_school", "difficulty", "high school"),
        ("task.unit=Phrase", "unit", "phrase"),
        ("task.source_language=german", "source_language", "German"),
        ("task.source_language=de", "source_language", "German"),
        ("task.target_language=zh", "target_language", "Chinese"),
        ('task.target_language="Chinese (Simplified)"', "target_language", "Chinese"),
    ],
)
def test_values_are_read_as_people_write_them(override, name, value):
    assert fixed(override)[name] == value


def test_a_list_of_values_is_read_the_same_way():
    cfg = synthkit.compose("llm=mock", "task.difficulty=[COLLEGE,High School]", "task.target_language=[de,FR]")
    spec = TaskSpec(cfg.task, cfg.preset)
    drawn = [spec.draw_attributes(0, row) for row in range(100)]
    assert {d["difficulty"] for d in drawn} == {"college", "high school"}
    assert {d["target_language"] for d in drawn} == {"German", "French"}


def test_rows_and_the_card_see_one_name_per_language():
    spec = TaskSpec(synthkit.compose("llm=mock", "task.source_language=null").task)
    drawn = {spec.draw_attributes(0, row)["source_language"] for row in range(3000)}
    assert "Chinese" in drawn and "Chinese (Simplified)" not in drawn
    assert drawn <= set(LANGUAGES)


def test_weights_name_values_as_people_write_them():
    task = OmegaConf.to_container(synthkit.compose("llm=mock", "task=monolingual_triplet").task, resolve=True)
    task["language"] = None
    task["domains"]["language"] = {"values": ["English", "German", "French"], "weights": {"english": 8, "de": 1}}
    shares = TaskSpec(task).expected_shares()["language"]
    assert shares == {"English": 8 / 9, "German": 1 / 9, "French": 0.0}


@pytest.mark.parametrize(
    "override,needles",
    [
        ("task.difficulty=colege", ["task.difficulty='colege' is not allowed (did you mean college?)"]),
        ("task.source_language=Germn", ["task.source_language='Germn' is not one of", "did you mean German?"]),
        ("task.target_language=Portugese", ["did you mean Portuguese?"]),
    ],
)
def test_a_near_miss_says_what_was_meant(override, needles):
    with pytest.raises(UserError) as error:
        fixed(override)
    for needle in needles:
        assert needle in str(error.value)


def test_an_unknown_language_lists_close_names_not_all_of_them():
    with pytest.raises(UserError) as error:
        fixed("task.target_language=Klingon")
    message = str(error.value)
    assert "Afrikaans" not in message and "Yiddish" not in message and len(message) < 250
    assert "ISO code" in message


def test_a_language_known_but_outside_the_tasks_languages_names_itself():
    task = OmegaConf.to_container(synthkit.compose("llm=mock", "task=monolingual_triplet").task, resolve=True)
    task["domains"]["language"] = ["English", "German"]
    with pytest.raises(UserError, match=r"task.language='fr' \(French\) is not one of this task's languages"):
        TaskSpec({**task, "language": "fr"})


@pytest.mark.parametrize(
    "override,suggestion",
    [
        ("num_row=5", "did you mean num_rows?"),
        ("task.unitt=phrase", "did you mean task.unit?"),
        ("llm.modle=gpt-4o", "did you mean llm.model?"),
        ("task=text_retreival", "did you mean text_retrieval?"),
    ],
)
def test_a_misspelt_key_or_option_says_what_was_meant(override, suggestion, tmp_path):
    assert_one_line_error(run_synthkit("llm=mock", override, cwd=tmp_path), suggestion)


def test_a_key_with_no_near_miss_gets_no_guess(tmp_path):
    line = assert_one_line_error(run_synthkit("llm=mock", "zzz=1", cwd=tmp_path), "unknown key 'zzz'")
    assert "did you mean" not in line
