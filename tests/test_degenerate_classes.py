"""What a real small model still got past the checks (issue 24) and a language check that let Spanish word salad
through as German (issue 23): the pure rules of synthkit/spec/script.py, synthkit/spec/degenerate.py (prose, meta,
echo inside a field, label shapes), synthkit/spec/checks.py (distinct with containment, not_copied) and the
implausible rule of synthkit/spec/langid.py; every written example of issue 24's table, replayed by the loopback
server, rejected with the check that names its class; good answers of every task in 15 languages written."""

import json
import random
from pathlib import Path

import pytest
from good_answers import DEFINITIONS, GOOD, answer
from helpers import read_jsonl, run_synthkit, server_llm
from omegaconf import OmegaConf

import synthkit
from synthkit.core.errors import UserError
from synthkit.spec.checks import build_checks
from synthkit.spec.degenerate import label_shape_reason, machine_token, meta_reason, placeholder_reason, prose_reason
from synthkit.spec.langid import CODES, check, decide, has_model, language_code
from synthkit.spec.script import script_reason, scripts_of
from synthkit.spec.task import TaskSpec

SAMPLE = [
    json.loads(line)
    for line in (Path(__file__).with_name("data") / "langid_sample.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]
STUB = "S2 79426749ac00 9591 5139 1208 4840"  # what tests/openai_server.py answers as a valid string
REVIEW = (
    "I bought this phone for the battery, but it died after two days and the support line never answered my "
    "calls, so I sent it back and asked for a refund, which took three weeks to arrive."
)


# Script of the target language.


@pytest.mark.parametrize(
    "text, name",
    [
        ("Luigi and Fusaake", "Chinese (Simplified)"),  # the issue's bitext rows
        ("Fan and Samurai", "Chinese (Simplified)"),
        ("Luigi Fusaake", "Chinese"),  # names alone are no Chinese either
        ("The library opens at nine.", "Russian"),
        ("The library opens at nine.", "Arabic"),
        ("the library opens at nine", "Hindi"),
        ("The Parthenon", "Greek"),
        ("ホテルの予約", "Chinese"),  # kana is not Chinese
        ("Библиотека открывается в девять", "Japanese"),
        ("도서관은 아홉 시에 문을 엽니다", "Thai"),
        ("Thư viện mở cửa lúc chín giờ", "Khmer"),
        ("पुस्तकालय नौ बजे खुलता है", "Hindi Romanize"),  # a romanized name expects Latin letters
        ("Москва большой город", "English"),  # the source language is checked like the target
        ("iphone pro max camera 리뷰", "Korean"),  # mostly Latin words
    ],
)
def test_text_in_another_script_is_rejected(text, name):
    assert script_reason(text, name) is not None, (text, name)


@pytest.mark.parametrize(
    "text, name",
    [
        ("使用 Python 和 TensorFlow 构建深度学习模型", "Chinese (Simplified)"),  # names and brands among the words
        ("iPhone 15 Pro Max 리뷰", "Korean"),
        ("ChatGPTとは何ですか", "Japanese"),
        ("政治", "Japanese"),  # kanji are Japanese letters too
        ("Apple и Google объявили о партнёрстве", "Russian"),
        ("kal subah hum train se Delhi jayenge", "Hindi Romanize"),
        ("Dobar dan, kako ste?", "Serbian"),  # Serbian is written in both scripts
        ("Добар дан, како сте?", "Serbian"),
        ("2023年GDP增长5.2%", "Chinese"),  # mostly numbers: nothing to judge
        (STUB, "Chinese"),  # codes (a digit or an underscore) are no words of a script
        ("user_query 79426749ac00 9591 5139", "Thai"),
        ("ganz egal", "Klingon"),  # a language synthkit does not know: not judged
    ],
)
def test_text_in_its_script_passes(text, name):
    assert script_reason(text, name) is None


@pytest.mark.parametrize(
    "text, name",
    [
        ("〇〇〇 〇〇 ok", "English"),  # Han numerals: Han characters that are no letters
        ("ि ि ि ि", "English"),  # Devanagari vowel signs alone: marks of a script, no letters either
        ("naïve café", "Russian"),
    ],
)
def test_characters_of_another_script_that_are_no_letters_still_count(text, name):
    """A text whose every character is of its language's scripts (or of none) is passed without counting its words;
    a mark or a numeral of another script is not of none."""
    assert script_reason(text, name) is not None


def test_every_language_name_has_scripts_and_the_sample_is_in_them():
    assert [name for name in CODES if not scripts_of(name)] == []
    assert scripts_of("Urdu Romanize") == {"Latin"} and scripts_of("Urdu") == {"Arabic"}
    assert [(r["lang"], r["text"]) for r in SAMPLE if script_reason(r["text"], r["lang"])] == []
    for language, good in GOOD.items():
        texts = (good["phrase"], good["query"], good["passage"], *good["labels"], *good["sentences"])
        assert [t for t in texts if script_reason(t, language)] == [], language


# Key names, URLs, paths, file names, ids and timestamps instead of prose.


@pytest.mark.parametrize(
    "text, kind",
    [
        ("s1.jpg", "file name"),
        ("s3.png", "file name"),
        ("https://www.example.com/s1", "URL"),
        ("test.txt", "file name"),
        ("test_positive.pdf", "file name"),
        ("ÚněňŒ-509090-S2-3.19", "id"),
        ("This passage is from the article on 2022-01-01T09:00:00", "timestamp"),
        ("See https://www.example.com/s2", "URL"),
        ("s1.jpg and s2.png", "file name"),
        ("/usr/local/share/data", "path"),
        ("123e4567-e89b-12d3-a456-426614174000", "id"),
        ("15.05.22", "numbers and symbols"),
    ],
)
def test_machine_tokens_instead_of_prose_are_rejected(text, kind):
    reason = prose_reason(text)
    assert reason is not None and kind in reason, (text, reason)


@pytest.mark.parametrize(
    "text",
    [
        "Visit www.example.com for more information about the museum.",  # prose around a URL
        "GPT-4o-mini pricing",
        "COVID-19 vaccine side effects",
        "SARS-CoV-2 spreads through droplets.",
        "Version v1.2.3 fixes the login bug.",
        "The meeting moved to 2022-01-01.",
        "He/she signs the form and/or sends it.",
        "Node.js tutorial for beginners",
        "e.g. the U.S. economy",
        STUB,  # the loopback server's valid strings
        "positive_document 79426749ac00 9591 5139 1208 4840",
        " ".join(str(1000 + i) for i in range(120)),  # a long run of numbers may be a table a task asked for
    ],
)
def test_prose_with_codes_in_it_passes(text):
    assert prose_reason(text) is None


def test_a_task_that_asks_for_urls_or_numbers_may_get_them():
    spec = {"check": "prose", "fields": ["input"]}
    (prose,) = build_checks([spec], "toy", ["input"], ["task"])
    assert "URL" in prose.failure({"input": "https://www.wikipedia.org"}, {"task": "Find news."}).message
    assert prose.failure({"input": "https://www.wikipedia.org"}, {"task": "Given a URL, name the site."}) is None
    assert prose.failure({"input": "1969"}, {"task": "Given a year, retrieve an event of it."}) is None
    (allowed,) = build_checks([{**spec, "allow": ["number"]}], "toy", ["input"], ["task"])
    assert allowed.failure({"input": "1969"}, {"task": "Find news."}) is None
    with pytest.raises(UserError, match="allow takes"):
        build_checks([{**spec, "allow": ["letters"]}], "toy", ["input"], ["task"])


def test_machine_token_kinds():
    assert machine_token("(https://example.org/a).") == "url" and machine_token("mail@example.org") == "url"
    assert machine_token("report_2023.xlsx") == "file" and machine_token("C:\\Users\\me") == "path"
    assert machine_token("A12-345-678") == "id" and machine_token("9f86d081884c7d659a2feaa0c55ad015") == "id"
    assert machine_token("COVID-19") is None and machine_token("24/7") is None and machine_token("3.14") is None


# Echoes of key names inside a field.


def _classify_echo():
    spec = TaskSpec(
        OmegaConf.to_container(
            synthkit.compose("task=text_classification", "llm=mock", "task.task=Classify reviews").task, resolve=True
        )
    )
    return next(c for c in spec.checks if c.name == "echo"), spec.draw_attributes(0, 0)


@pytest.mark.parametrize(
    "text, found",
    [
        ("Product review sentiment analysis task description with no input_text.", "names the output key 'input_text'"),
        ("The misleading_label is sarcasm detection", "names the output key 'misleading_label'"),
        ("input_text: my review of the blender", "names the output key 'input_text'"),
    ],
)
def test_key_names_inside_a_field_are_echoes(text, found):
    echo, attributes = _classify_echo()
    failure = echo.failure({"input_text": text}, attributes)
    assert failure is not None and found in failure.message, failure


def test_short_keys_count_only_among_the_instructions():
    (echo,) = build_checks([{"check": "echo", "fields": ["S1"]}], "toy", ["S1", "S2"], ["unit"], "S1 is a {{ unit }}.")
    assert "with words of the instructions" in echo.failure({"S1": "S1 and S2"}, {"unit": "sentence"}).message
    assert echo.failure({"S1": "The S1 sentence"}, {"unit": "sentence"}) is not None
    assert echo.failure({"S1": "Amazon S3 stores objects in buckets."}, {"unit": "sentence"}) is None
    assert echo.failure({"S1": STUB.replace("S2", "S1")}, {"unit": "sentence"}) is None


def test_a_key_with_a_number_is_an_echo():
    (echo,) = build_checks([{"check": "echo", "fields": ["S1"]}], "toy", ["S1", "S2"], ["unit"], "S1 is a {{ unit }}.")
    for text in ("S12", "S2 1", "s21"):
        assert "with a number" in echo.failure({"S1": text}, {"unit": "sentence"}).message
    assert echo.failure({"S1": "S100 cars"}, {"unit": "sentence"}) is None


def test_three_fields_of_one_template_with_other_numbers_are_duplicates():
    (distinct,) = build_checks([{"check": "distinct", "fields": ["S1", "S2", "S3"]}], "toy", ["S1", "S2", "S3"], [])
    template = {"S1": "theres an 11th item", "S2": "theres a 19th item", "S3": "theres a 17th item"}
    assert "differ only in their numbers" in distinct.failure(template, {}).message
    fair = {"S1": "The train leaves at 3 pm.", "S2": "The train departs at 3 pm.", "S3": "I paid 5 euros."}
    assert distinct.failure(fair, {}) is None
    (pair,) = build_checks([{"check": "distinct", "fields": ["pos", "neg"]}], "toy", ["pos", "neg"], [])
    assert pair.failure({"pos": "The meeting is at 3 pm.", "neg": "The meeting is at 4 pm."}, {}) is None


def test_a_key_name_with_filler_words_is_an_echo():
    (echo,) = build_checks(
        [{"check": "echo", "fields": ["input"]}], "toy", ["input", "positive_document"], ["task"], "Write a pair."
    )
    for text in ("your input", "your positive document", "the input"):
        assert "with filler words" in echo.failure({"input": text}, {"task": "t"}).message
    assert echo.failure({"input": "Input devices for gaming"}, {"task": "t"}) is None


def test_fields_that_differ_only_by_their_key_names_are_duplicates():
    (distinct,) = build_checks([{"check": "distinct", "fields": ["S1", "S2", "S3"]}], "toy", ["S1", "S2", "S3"], [])
    swapped = {f"S{i}": f"The passage on the importance of S{i} to society" for i in (1, 2, 3)}
    assert "near) duplicates" in distinct.failure(swapped, {}).message
    fair = {"S1": "The cat sat on the mat.", "S2": "A cat was sitting on the mat.", "S3": "Dogs dig in gardens."}
    assert distinct.failure(fair, {}) is None


@pytest.mark.parametrize(
    "text, slot",
    [
        ("A 2022 [Title of the hotel's list] that includes [List of hotels] and [List of meals],", "[Title of"),
        ("Dear [Your Name], thank you for your order.", "[Your Name]"),
        ("Welcome to {company name}, the best shop in town.", "{company name}"),
    ],
)
def test_template_slots_inside_a_text_are_placeholders(text, slot):
    assert slot in placeholder_reason(text)


@pytest.mark.parametrize(
    "text",
    [
        "He said [sic] that the law was unfair.",
        "See [1] and [citation needed].",
        "[Laughs] That was funny.",
        "Read [the product page](https://example.com/p) first.",
    ],
)
def test_brackets_that_are_not_slots_pass(text):
    assert placeholder_reason(text) is None


# Texts about the task instead of texts of it.


@pytest.mark.parametrize(
    "text",
    [
        "Product review sentiment analysis task description with no input_text.",
        "A very short story, no more than 20 words",
        "A product review of at least 50 words",
        "This text is an example for the classification task.",
        "Here is a passage without any placeholder.",
        # written by SmolLM2-135M through llama-server (this file's last test replays whole rows)
        "This is a sentence that is not very similar to the other sentences.",
        "This sentence is different.",
        "The original sentence is ",
        "The sentence has multiple errors.",
        "This sentence.",
        "The similarity score of S1 is 4.5, while S1 is not a sentence that is in our dataset.",
        "this task",
        "Can you please provide a JSON object containing the answer to the question ",
        "This task is designed to help you improve your writing skills and style.",
        "It looks like you have a misunderstanding about the question. Your request seems to be something that I "
        "cannot answer without more details about the passage and the question you want me to write.",
        "Sure, here is a passage about the French revolution.",
        "the task at hand is to provide a JSON object that answers the question, while the question itself is not in "
        "a JSON string, and the JSON string is in a JSON string format.",
        "This is a document that argues one side of a question that needs to be edited, however the input has 71 "
        "words; it needs at least 150 words; therefore, I will be able to edit it in 1 minute. The input needs to be "
        "edited, however I do not have time to edit it; I have only 15 words left to complete it.",
        "This task requires matching a title of a scientific paper to the title of the best hotel in Los Angeles "
        "in 2023.",
        "This is a JSON document that follows the given requirements. It includes information about the top-rated "
        "hotels and the content that supports the requirement, with a minimum length of 100 characters.",
    ],
)
def test_meta_texts_are_rejected(text):
    assert meta_reason(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "A short story about a dragon",  # one marker: a fair query or title
        "Essays need at least 300 words.",
        "Read the instructions before you start the task.",
        "This task is hard for children.",
        "This task requires a screwdriver and ten minutes.",
        "This is a sample of soil from the river bank.",
        "I'm sorry for the delay: the parcel left our warehouse this morning.",
        "The passage of the bill took months.",
        "The sentence was overturned on appeal.",
        "This passage describes photosynthesis in plants.",
        "My opinion is different.",
        "Short stories",
        "The review was written in 20 minutes and has 3 paragraphs about the hotel's breakfast, its pool, its staff "
        "and the long walk from the station, which the author found tiring in the summer heat.",  # long: a text
    ],
)
def test_texts_that_mention_texts_pass(text):
    assert meta_reason(text) is None


# Labels shaped like labels.

PARAPHRASE = (
    "The customer bought the phone for its battery, which died after only two days, and the support line never "
    "answered the calls, so the phone was sent back and a refund was asked for, which took three weeks to arrive; "
    "all in all, the review expresses strong dissatisfaction with the product and the service."
)


@pytest.mark.parametrize(
    "label, text, other, found",
    [
        (PARAPHRASE, REVIEW, "Positive", "a label is a short class name"),  # 304 characters paraphrasing the input
        ("The customer is unhappy with the battery.", REVIEW, "Positive", "it is a sentence"),
        ("这是一条非常负面的评论。", "电池两天就没电了，客服也不接电话。", "正面", "it is a sentence"),
        ("a", REVIEW, "Negative", "lone character"),
        ("Very negative review", "Awful.", "Positive", "longer than the text"),
    ],
)
def test_labels_not_shaped_like_labels_are_rejected(label, text, other, found):
    reason = label_shape_reason(label, text, (other,))
    assert reason is not None and found in reason, (label, reason)
    assert len(PARAPHRASE) == 304


@pytest.mark.parametrize(
    "label, other", [("Negative", "Positive"), ("A", "B"), ("5", "2"), ("Billing department", "Technical support")]
)
def test_real_labels_pass(label, other):
    assert label_shape_reason(label, REVIEW, (other,)) is None


def test_the_label_check_compares_the_two_labels_and_the_text():
    spec = {"check": "label", "fields": ["label", "misleading_label"], "text": "input_text"}
    (label,) = build_checks([spec], "toy", ["input_text", "label", "misleading_label"], [])
    assert label.failure({"input_text": REVIEW, "label": "Negative", "misleading_label": "Positive"}, {}) is None
    failure = label.failure({"input_text": REVIEW, "label": "Negative", "misleading_label": "a"}, {})
    assert failure.message.startswith("misleading_label: 'a' is a lone character")
    with pytest.raises(UserError, match="names txt, which is not an output key"):
        build_checks([{**spec, "text": "txt"}], "toy", ["input_text", "label", "misleading_label"], [])


# Fields that must differ: within a row, and from the passage.


def test_an_input_copied_into_a_longer_positive_is_no_pair():
    spec = {"check": "distinct", "fields": ["input", "positive_document"], "contained": True}
    (distinct,) = build_checks([spec], "toy", ["input", "positive_document"], [])
    copied = {
        "input": "The battery died after two days",
        "positive_document": "The battery died after two days, so I returned the phone to the shop.",
    }
    assert "positive_document copies input whole" in distinct.failure(copied, {}).message
    named = {"input": "Statue of Liberty", "positive_document": "The Statue of Liberty stands in New York harbour."}
    assert distinct.failure(named, {}) is None  # a short name the positive rightly mentions
    (jaccard_only,) = build_checks([{**spec, "contained": False}], "toy", ["input", "positive_document"], [])
    assert jaccard_only.failure(copied, {}) is None  # word overlap 0.5: the containment is what finds it


def test_a_query_copied_from_its_passage_is_rejected():
    spec = {"check": "not_copied", "fields": ["query"], "source": "passage", "words": 8}
    (copied,) = build_checks([spec], "grounded", ["task_definition", "query"], ["passage"])
    passage = {"passage": GOOD["English"]["passage"]}
    failure = copied.failure({"query": "the angle of the dance shows the direction relative to the sun"}, passage)
    assert failure.message == "query copies 8 words in a row from the passage"
    assert "copied whole" in copied.failure({"query": "Honeybees communicate the location of food"}, passage).message
    assert copied.failure({"query": "why do bees dance"}, passage) is None
    assert copied.failure({"query": "waggle dance"}, passage) is None  # a keyword query of its words is fine
    with pytest.raises(UserError, match="source chunk is no attribute"):
        build_checks([{**spec, "source": "chunk"}], "grounded", ["task_definition", "query"], ["passage"])


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"check": "script", "fields": ["S1"]}, "check script: fields maps each field to the attribute"),
        ({"check": "language", "fields": ["S1"]}, "check language: fields maps each field"),
        ({"check": "not_copied", "fields": ["S1"], "source": "lang", "words": "eight"}, "words is a number"),
        ({"check": "label", "fields": ["S1"], "text": ["S2"]}, "text names the one output key"),
        ({"check": "label", "fields": ["S1"], "most": 0}, "most is a number of words"),
        ({"check": "distinct", "fields": ["S1", "S2"], "contained": True, "strict": 1}, "unexpected keyword"),
    ],
)
def test_malformed_check_parameters_are_one_line_errors(spec, needle):
    with pytest.raises(UserError, match=needle):
        build_checks([spec], "toy", ["S1", "S2"], ["lang"])


def test_fields_that_are_not_strings_are_passed_over():
    checks = build_checks(
        [
            {"check": "script", "fields": {"S1": "lang"}},
            {"check": "label", "fields": ["S2"], "text": "S1"},
            {"check": "not_copied", "fields": ["S1"], "source": "S2"},
        ],
        "toy",
        ["S1", "S2"],
        ["lang"],
    )
    answer = {"S1": ["图书馆每天早上九点开门", "the library"], "S2": "Sport"}
    assert [c.failure(answer, {"lang": "Chinese"}) for c in checks][1:] == [None, None]
    # the items of a list are checked one by one: the first is Chinese, the second is not
    assert checks[0].failure(answer, {"lang": "Chinese"}).message.startswith("S1: it has no word in the Han script")
    assert checks[0].failure({"S1": answer["S1"][:1]}, {"lang": "Chinese"}) is None


# The language check: the wanted language implausible (issue 23).


def _salad(texts: list, size: int, rng: random.Random) -> str:
    words = [w.strip(".,;:!?¿¡\"'()") for t in texts for w in t.split()]
    return " ".join(rng.choice([w for w in words if w]) for _ in range(size))


def test_spanish_word_salad_for_a_german_target_is_wrong():
    # The loopback stub of issue 23: Iberian words strung together, asked in German. No one language of the
    # group is confident (es 0.50, gl 0.47...), so only the implausible rule can reject them.
    iberian = [r["text"] for r in SAMPLE if r["lang"] in ("Spanish", "Galician", "Portuguese")]
    rng = random.Random(3)
    verdicts = [check(_salad(iberian, 16, rng), "German") for _ in range(8)]
    assert all(v.status == "wrong" and v.wanted <= 0.004 for v in verdicts), verdicts
    assert sum(v.reason == "implausible" for v in verdicts) >= 3, verdicts
    (language,) = build_checks([{"check": "language", "fields": {"S2": "lang"}}], "t", ["S2"], ["lang"])
    salad = _salad(iberian, 16, random.Random(3))
    message = language.failure({"S2": salad}, {"lang": "German"}).message
    assert message.startswith("S2 is hardly German (probability 0.00") and "it reads as Spanish (es, 0.5" in message


def test_a_short_source_in_the_wrong_language_is_wrong():
    assert check("Bien sûr", "English").status == "wrong"  # the issue's bitext S1
    assert check("Luigi and Fusaake", "Chinese (Simplified)").status == "wrong"


def test_implausible_needs_a_small_share_of_the_likeliest():
    assert decide([("es", 0.6), ("gl", 0.2), ("pt", 0.09), ("de", 0.004)], "German").status == "wrong"
    # a flat ranking (one word: every language about equal) says nothing
    assert decide([("sr", 0.014), ("de", 0.014)], "German").status == "unchecked"
    assert decide([("fr", 0.2), ("en", 0.012)], "English").status == "unchecked"  # 0.06 of the likeliest
    # a name the identifier does not model has no probability of its own to weigh
    assert decide([("jv", 0.56), ("hi", 0.0)], "Hindi Romanize", short=True).outcome == "unchecked:no_model"


@pytest.mark.parametrize(
    "text, name",
    [
        ("Einstein", "Swahili"),  # Swahili 0.001, but a name is in every language
        ("Eiffel Tower", "French"),
        ("Leonardo da Vinci", "German"),
        ("Mount Everest", "Vietnamese"),
        ("YouTube", "French"),
        ("iPhone 15 Pro", "Korean"),
    ],
)
def test_a_short_text_of_names_is_not_implausible(text, name):
    assert check(text, name).status != "wrong"


def test_a_long_chinese_text_is_no_japanese():
    assert check("我们明天早上八点在学校门口见面，然后一起坐火车去北京看望爷爷奶奶。", "Japanese").status == "wrong"
    assert check("政治経済", "Japanese").status != "wrong"  # a few kanji alone may be Japanese


def test_word_salads_of_each_language_are_that_language_and_no_other():
    # The bench (bench/langid_eval.py) measures every pair; this keeps its headline: 20-word salads of a
    # language's own words are never rejected as that language, and nearly always as an unrelated one.
    by_language: dict = {}
    for r in SAMPLE:
        if has_model(r["lang"]) and " " in r["text"]:
            by_language.setdefault(r["lang"], []).append(r["text"])
    rng = random.Random(24)
    others = ["German", "Russian", "Indonesian", "Turkish", "Vietnamese", "Hungarian"]
    accepted, pairs = [], 0
    for language, texts in sorted(by_language.items()):
        salad = _salad(texts, 20, rng)
        assert check(salad, language).status != "wrong", (language, salad)
        for other in others:
            if not set(language_code(other)) & set(language_code(language)) and not script_reason(salad, other):
                pairs += 1
                if check(salad, other).status != "wrong":
                    accepted.append((language, other))
    assert pairs > 200 and len(accepted) <= pairs // 100, accepted


# Issue 24's table, replayed by the loopback server.


def _text(**fields) -> str:
    return "text:" + json.dumps(fields, ensure_ascii=False)


CLASSIFY = ["task=text_classification", "task.task=Classify product reviews by sentiment", "task.language=English"]
BITEXT_ZH = ["task.source_language=English", "task.target_language='Chinese (Simplified)'", "task.unit=phrase"]
GERMAN = GOOD["German"]
ENGLISH = GOOD["English"]
# (overrides, the planted answers (the server's first), the checks that must reject each)
TABLE = [
    (  # wrong script for the target language
        BITEXT_ZH,
        [
            _text(S1="the two brothers", S2="Luigi and Fusaake", S3="新鲜的山间空气"),
            _text(S1="fresh mountain air", S2="新鲜的山间空气", S3="Fan and Samurai"),
        ],
        ["script", "script"],
    ),
    (  # key names, URLs, file names, ids instead of text
        ["task=monolingual_triplet", "task.language=English", "task.unit=phrase"],
        [
            _text(S1="s1.jpg", S2="s2.png", S3="s3.png"),
            _text(S1="https://www.example.com/s1", S2="https://www.example.com/s2", S3="fresh mountain air"),
        ],
        ["prose", "prose"],
    ),
    (
        ["task=monolingual_triplet", "task.language=English", "task.unit=passage"],
        [_text(S1="This passage is from the article on 2022-01-01T09:00:00", S2=ENGLISH["passage"], S3=REVIEW)],
        ["prose"],
    ),
    (
        ["task.source_language=English", "task.target_language=German", "task.unit=phrase"],
        [_text(S1=ENGLISH["phrase"], S2="ÚněňŒ-509090-S2-3.19", S3=GERMAN["phrase"])],
        ["prose"],
    ),
    (  # fields that repeat each other: an input copied into a longer positive
        [
            "task=short_text_matching",
            "task.language=English",
            f"task.task='{DEFINITIONS['short_text_matching']}'",
        ],
        [
            _text(input="test.txt", positive_document="test_positive.pdf"),
            _text(
                input="The battery died after two days",
                positive_document="The battery died after two days, so I returned the phone to the shop.",
            ),
        ],
        ["distinct", "prose"],
    ),
    (  # texts about the task; labels that are not labels
        CLASSIFY,
        [
            _text(
                input_text="Product review sentiment analysis task description with no input_text.",
                label="Negative",
                misleading_label="Positive",
            ),
            _text(
                input_text="A very short story, no more than 20 words", label="Negative", misleading_label="Positive"
            ),
            _text(input_text=REVIEW, label=PARAPHRASE, misleading_label="Positive"),
            _text(input_text=REVIEW, label="The customer is unhappy with the battery.", misleading_label="Positive"),
            _text(input_text=REVIEW, label="a", misleading_label="Positive"),
            _text(input_text="15.05.22", label="Positive", misleading_label="Negative"),
        ],
        ["echo", "label", "label", "label", "meta", "prose"],
    ),
    (  # a source in the wrong language
        ["task.source_language=English", "task.target_language=German", "task.unit=phrase"],
        [_text(S1="Bien sûr", S2="Natürlich", S3="Natürlich nicht")],
        ["language"],
    ),
    # What SmolLM2-135M wrote past the checks through llama-server in a later pass (README: Local models)
    (
        ["task=monolingual_triplet", "task.language=English", "task.unit=sentence"],
        [
            _text(**{f"S{i}": f"The passage on the importance of S{i} to society" for i in (1, 2, 3)}),
            _text(S1="S12", S2="S21", S3="S25"),
            _text(
                S1="This is a sentence that is not very similar to the other sentences.",
                S2="This sentence is different.",
                S3="This sentence is different from the others",
            ),
            _text(
                S1="The original sentence is ",
                S2="The sentence has multiple errors.",
                S3="The sentence has multiple sentences.",
            ),
            _text(
                S1="The sentences are about many topics.",
                S2="The similarity score of S1 is 4.5, while S1 is not a sentence that is in our dataset.",
                S3="Trains run late in winter.",
            ),
        ],
        ["meta", "echo", "meta", "meta", "meta"],
    ),
    (
        ["task=short_text_matching", f"task.task='{DEFINITIONS['short_text_matching']}'", "task.language=English"],
        [
            _text(
                input="A list of the top-rated hotels in Los Angeles with a dining experience",
                positive_document="A 2022 [Title of the hotel's list] that includes [List of hotels] and [List of meals]",
            ),
            _text(input="this task", positive_document="This task is challenging"),
            _text(input="The top-rated hotels in Los Angeles", positive_document="This sentence."),
            _text(
                input="Hotels in Los Angeles that care for the planet",
                positive_document="This is a JSON document that follows the given requirements. It includes "
                "information about the top-rated hotels.",
            ),
            _text(
                input="This task requires matching a title of a scientific paper to the title of a hotel.",
                positive_document="The Grand Hotel in Los Angeles opened in 1923 and still serves afternoon tea.",
            ),
        ],
        ["placeholder", "meta", "meta", "meta", "meta"],
    ),
]


def _replay(server, tmp_path, name: str, args: list, planted: list, *extra: str):
    server.set_plan({"first": planted})
    out = tmp_path / name
    result = run_synthkit(
        *server_llm(server),
        f"num_rows={len(planted)}",
        "max_attempts=1",
        "cache=false",
        "dedup=false",
        f"output_dir={out}",
        *extra,
        *args,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return read_jsonl(out / "rejects.jsonl"), read_jsonl(out / "data.jsonl")


def test_every_written_example_of_the_issue_is_rejected_naming_its_check(openai_server, tmp_path):
    server = openai_server()
    for n, (args, planted, checks) in enumerate(TABLE):
        rejects, rows = _replay(server, tmp_path, f"case{n}", args, planted)
        assert sorted(r["check"] for r in rejects) == sorted(checks), (
            args,
            [(r["check"], r["reason"]) for r in rejects],
        )
        assert all(r["reason"].startswith(f"check {r['check']}: ") for r in rejects), rejects
        assert len(rows) == len(planted)  # the refills, the server's valid answers, are written


def _corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.txt").write_text(ENGLISH["passage"] + "\n", encoding="utf-8")
    return docs


GROUNDED = ["task=grounded_retrieval", "task.language=English", "task.query_length=5 to 15 words"]


def test_grounded_fields_that_repeat_the_instruction_or_the_passage_are_rejected(openai_server, tmp_path):
    server = openai_server()
    same = "Provide passages that answer this question. "  # the issue's ≈15 of 16 rows
    planted = [
        _text(task_definition=same, query=same),
        _text(
            task_definition="Given a question about insects, retrieve passages that answer it.",
            query="The angle of the dance shows the direction relative to the sun",
        ),
    ]
    rejects, rows = _replay(server, tmp_path, "grounded", GROUNDED, planted, f"corpus={_corpus(tmp_path)}")
    assert sorted(r["check"] for r in rejects) == ["distinct", "not_copied"], rejects
    assert len(rows) == 2


# Good answers of every task in 15 languages, through the server: none rejected.

# grounded_retrieval's query languages (its domain), and the passage's own (English here)
GROUNDED_LANGUAGES = {"English", "German", "French", "Spanish", "Chinese", "Japanese"}
PASSAGE_LANGUAGE = "the language of the passage"


def _good_plan(task: str) -> tuple:
    """(overrides, plan, answers): a grid over the languages (the 15 of tests/good_answers.py; grounded: those
    of its domain), the server answering each prompt with the good answer in the language it asks for, and
    the answers by language name."""
    rules, answers = [], {}
    languages = sorted(GOOD) if task != "grounded_retrieval" else [*sorted(GROUNDED_LANGUAGES), PASSAGE_LANGUAGE]
    for language in languages:
        name = language
        if task == "bitext_retrieval":
            if language == "English":
                continue
            outputs, match = answer(task, language), f"S2 and S3 are sentences in {name}."
        elif task == "monolingual_triplet":
            outputs, match = answer(task, language), f"each value is a sentence in {name}."
        elif task == "grounded_retrieval":
            query = GOOD.get(language, GOOD["English"])["query"]
            outputs = {"task_definition": DEFINITIONS["text_retrieval"], "query": query}
            match = f"The query is written in {name}."
        else:
            outputs, match = answer(task, language), f"written in {name}."
        rules.append({"match": match, "sequence": [_text(**outputs)]})
        answers[name] = outputs
    attribute = "target_language" if task == "bitext_retrieval" else "language"
    args = [f"task={task}", f"task.{attribute}=[{','.join(repr(name) for name in answers)}]"]
    args += [f"grid=[{attribute}]", "task.unit=sentence"] if task in ("bitext_retrieval", "monolingual_triplet") else []
    if task not in ("bitext_retrieval", "monolingual_triplet", "grounded_retrieval"):
        args += [f"grid=[{attribute}]", f"task.task='{DEFINITIONS[task]}'"]
    if task == "text_retrieval":
        args += ["task.num_words=50", "task.query_length=less than 5 words"]
    if task == "grounded_retrieval":
        args += [f"grid=[{attribute}]", "task.query_length=less than 5 words"]
    return args, {"rules": rules, "default": ["text:{}"]}, answers


@pytest.mark.parametrize(
    "task",
    [
        "bitext_retrieval",
        "monolingual_triplet",
        "text_classification",
        "text_retrieval",
        "short_text_matching",
        "long_text_matching",
        "grounded_retrieval",
    ],
)
def test_good_answers_in_15_languages_are_written_through_the_server(openai_server, tmp_path, task):
    server = openai_server()
    args, plan, answers = _good_plan(task)
    server.set_plan(plan)
    corpus = [f"corpus={_corpus(tmp_path)}"] if task == "grounded_retrieval" else []
    out = tmp_path / "run"
    result = run_synthkit(
        *server_llm(server), "num_rows=1", "max_attempts=1", "dedup=false", f"output_dir={out}", *args, *corpus,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [(r["check"], r["reason"]) for r in read_jsonl(out / "rejects.jsonl")] == []
    rows = read_jsonl(out / "data.jsonl")
    attribute = "target_language" if task == "bitext_retrieval" else "language"
    assert len(rows) == len(answers)
    for row in rows:
        wanted = answers[row["attributes"][attribute]]
        assert {key: row[key] for key in wanted} == wanted  # the planted good answer, not the server's default


def test_a_choice_is_one_of_the_items_offered():
    (one_of,) = build_checks([{"check": "one_of", "fields": ["persona"], "values": "personas"}], "toy", ["persona"],
                             ["personas"])  # fmt: skip
    offered = {"personas": ["a midwife reviewing guidelines", "a gym owner choosing equipment"]}
    assert one_of.failure({"persona": "A Midwife reviewing  guidelines."}, offered) is None
    for made_up in ("persona", "Mario Lopez", "A: no one will ever look for the passage directly"):
        assert "none of the personas offered" in one_of.failure({"persona": made_up}, offered).message
    with pytest.raises(UserError, match="uses the attribute people"):
        build_checks([{"check": "one_of", "fields": ["persona"], "values": "people"}], "toy", ["persona"], ["x"])


SOURDOUGH = (
    "A sourdough starter is a mixture of flour and water in which wild yeasts and lactic acid bacteria live "
    "together. It is ready to use when it doubles in size within four to eight hours of a feeding."
)


@pytest.mark.parametrize(
    "query",
    [  # written by SmolLM2-135M for grounded_retrieval through llama-server
        "What are the steps to create a JSON document with these instructions?",
        "This is a search query of what this question is about,",
        "The query is a statement to verify the content of the query provided.",
    ],
)
def test_a_grounded_query_about_something_else_than_its_passage_is_rejected(query):
    spec = {"check": "about", "fields": ["query"], "source": "passage", "language": "language"}
    (about,) = build_checks([spec], "toy", ["query"], ["passage", "language"])
    for language in ("the language of the passage", "English"):  # English: the language the passage is in
        named = {"passage": SOURDOUGH, "language": language}
        assert "shares no word with the passage" in about.failure({"query": query}, named).message


@pytest.mark.parametrize(
    "query, language",
    [
        ("how long until a starter doubles", "the language of the passage"),
        ("why does sourdough taste sour", "the language of the passage"),
        ("wild yeast", "the language of the passage"),
        ("Wie lange braucht Sauerteig?", "German"),  # another language: no word in common by nature
        ("酸面团怎么做", "the language of the passage"),
    ],
)
def test_a_query_about_its_passage_passes(query, language):
    spec = {"check": "about", "fields": ["query"], "source": "passage", "language": "language"}
    (about,) = build_checks([spec], "toy", ["query"], ["passage", "language"])
    assert about.failure({"query": query}, {"passage": SOURDOUGH, "language": language}) is None


LOOPING = (  # written by SmolLM2-135M through llama-server as a long_text_matching input
    "This is a document that needs to be edited. I will be able to edit this document in 1 minute, I will be able "
    "to edit this document. I will be able to edit this document in 1 minute; this is a short document and this "
    "document needs to be edited; I will be able to edit this document in 1 minute, I will be able to edit it."
)


def test_a_text_that_goes_round_in_circles_is_rejected():
    assert "goes round in circles" in placeholder_reason(LOOPING)


def test_prose_that_repeats_a_phrase_now_and_then_passes():
    prose = (
        "The best way to learn a language is to speak it every day. The best way to remember words is to use them "
        "in sentences of your own, and the best way to keep going is to find a partner who wants to learn too. "
        "Reading children's books helps, as do films with subtitles in the language you are learning."
    )
    assert placeholder_reason(prose) is None


def test_a_corpus_passage_that_mentions_amounts_asks_for_no_numbers_alone():
    from types import SimpleNamespace

    from synthkit.corpus.domain import ChunkText
    from synthkit.spec.degenerate import allowed_by

    text = "The rate rises until the amount of the enzyme RuBisCO becomes limiting in 2024."
    passage = ChunkText.of(SimpleNamespace(text=text))
    assert "number" not in allowed_by({"passage": passage})
    assert "number" in allowed_by({"task": "Given a year, retrieve the events of that year"})  # a request: asked
    (prose,) = build_checks([{"check": "prose", "fields": ["query"]}], "toy", ["query"], ["passage"])
    assert "numbers and symbols" in prose.failure({"query": "30/35"}, {"passage": passage}).message
