"""Lengths in words for every script family: real sentences whose words were counted by hand."""

import re

import pytest

from synthkit.spec.checks import build_checks
from synthkit.spec.text import tokens, word_count

SENTENCES = [  # (text, words counted by hand)
    ("The committee approved the new budget after a long debate.", 10),
    ("Der Ausschuss genehmigte den neuen Haushalt nach einer langen Debatte.", 10),
    ("Комитет одобрил новый бюджет после долгих дебатов.", 7),
    ("اللجنة وافقت على الميزانية الجديدة بعد نقاش طويل", 8),
    ("समिति ने लंबी बहस के बाद नए बजट को मंजूरी दी", 11),
    (
        "我们明天早上八点在火车站见面，然后一起去博物馆参观。",
        12,
    ),  # 我们/明天/早上/八点/在/火车站/见面/然后/一起/去/博物馆/参观
    ("私は毎朝コーヒーを飲んでから会社に行きます。", 10),  # 私/は/毎朝/コーヒー/を/飲んで/から/会社/に/行きます
    ("ฉันชอบกินข้าวผัดกับไข่ดาวทุกเช้า", 9),  # ฉัน/ชอบ/กิน/ข้าว/ผัด/กับ/ไข่ดาว/ทุก/เช้า
    ("ຂ້ອຍຮັກເຈົ້າ", 3),  # ຂ້ອຍ/ຮັກ/ເຈົ້າ
    ("ខ្ញុំស្រឡាញ់ភាសាខ្មែរ", 4),  # ខ្ញុំ/ស្រឡាញ់/ភាសា/ខ្មែរ
    ("ကျွန်တော် ကော်ဖီ သောက်တယ်", 4),  # ကျွန်တော်/ကော်ဖီ/သောက်/တယ်
]


@pytest.mark.parametrize("text,words", SENTENCES, ids=[s[:12] for s, _ in SENTENCES])
def test_word_counts_are_right_within_a_third_in_every_script(text, words):
    assert abs(word_count(text) - words) <= max(1, words / 3), (word_count(text), words)


def test_scripts_without_spaces_were_one_word_per_clause_before():
    chinese = SENTENCES[5][0]
    assert len(re.findall(r"\w+", chinese)) == 2 and word_count(chinese) >= 10


def test_a_chinese_document_passes_a_length_check_it_meets():
    # An 85-character paragraph (~50 words) asked for num_words=50 at ratio 0.5: once rejected as "7 words".
    paragraph = (
        "人工智能正在改变我们的生活方式。从智能手机到自动驾驶汽车，"
        "这项技术已经渗透到各个领域。专家认为，未来十年内人工智能将在医疗、教育和交通方面发挥更大的作用。"
    )
    [check] = build_checks([{"check": "min_words", "fields": ["doc"], "words": 50, "ratio": 0.5}], "t", ["doc"], [])
    assert check.failure({"doc": paragraph}, {}) is None
    assert check.failure({"doc": paragraph[:20]}, {}) is not None


def test_tokens_split_scripts_without_spaces_into_characters():
    assert tokens("Label: 体育新闻") == ["label", "体", "育", "新", "闻"]
    assert tokens("Hello World") == ["hello", "world"]
