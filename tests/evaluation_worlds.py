"""Worlds to evaluate in, made on the spot (nothing is downloaded): tiny base models, a BEIR evaluation set and runs
of training rows whose answer to "does the data help?" is known in advance.

The topic world: T topics, each with its own query words (q{t}x{i}) and document words (d{t}x{i}). Queries and
their relevant documents share no word: they are linked only through the topic, which the base model knows weakly
(each word vector is alpha x its topic's axis + a random unit vector) and training rows can teach (a query of topic
t paired with a document of topic t). Rows whose positives are dealt out at random teach random links instead."""

import json
import random
from pathlib import Path

import numpy as np

from synthkit.core.record import Row

INSTRUCTION = "Given a topic query, find documents on its topic"


def topic_words(kind: str, topic: int, count: int = 8) -> list:
    return [f"{kind}{topic}x{i}" for i in range(count)]


def tiny_static_model(path: Path, topics: int = 8, words: int = 8, dim: int = 32, alpha: float = 0.2, seed: int = 0):
    """A model2vec model over the topic vocabulary, saved to `path` (a bare model2vec folder, as users have them)."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, pre_tokenizers

    rng = np.random.default_rng(seed)
    vocabulary = [w for t in range(topics) for kind in "qd" for w in topic_words(kind, t, words)]
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(vocabulary)}}
    axes = np.linalg.qr(rng.normal(size=(dim, topics)))[0].T  # one orthonormal axis per topic
    vectors = np.zeros((len(vocab), dim), np.float32)
    for t in range(topics):
        for kind in "qd":
            for w in topic_words(kind, t, words):
                noise = rng.normal(size=dim)
                vectors[vocab[w]] = alpha * axes[t] + noise / np.linalg.norm(noise)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(str(path))
    return str(path)


def tiny_transformer_model(path: Path, texts: list, hidden: int = 64, layers: int = 2, seed: int = 0) -> str:
    """A randomly initialised BERT (hidden 64, 2 layers) with a WordPiece tokenizer trained here on `texts`, saved as
    a sentence-transformers model (Transformer + mean Pooling) that loads by path."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    hf = Path(path) / "_hf"
    BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=128).save_pretrained(str(hf))
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=128,
    )  # fmt: skip
    BertModel(config).save_pretrained(str(hf))
    modules = [Transformer(str(hf), max_seq_length=128), Pooling(hidden, "mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return str(path)


def topic_beir_set(folder: Path, topics: int = 8, words: int = 8, docs: int = 6, queries: int = 8, seed: int = 0):
    """A BEIR folder: per topic `docs` documents of 3 document words and `queries` queries of 4 query words, every
    document of the topic relevant. Queries carry the instruction in metadata, as synthkit's BEIR export writes."""
    rng = random.Random(seed)
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    corpus, query_rows, qrels = [], [], []
    for t in range(topics):
        corpus += [
            {"_id": f"d{t}-{j}", "title": "", "text": " ".join(rng.sample(topic_words("d", t, words), 3))}
            for j in range(docs)
        ]
        for j in range(queries):
            text = " ".join(rng.sample(topic_words("q", t, words), 4))
            query_rows.append({"_id": f"q{t}-{j}", "text": text, "metadata": {"instruction": INSTRUCTION}})
            qrels += [(f"q{t}-{j}", f"d{t}-{k}") for k in range(docs)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in query_rows), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels), encoding="utf-8"
    )
    return folder


def topic_rows(per_topic: int, topics: int = 8, words: int = 8, seed: int = 0, shuffled: bool = False) -> list:
    """(query, positive, negative) of retrieval rows: a 2-word query of topic t, a 3-word document of topic t, a hard
    negative of another topic. 2-word queries never hold a 4-word evaluation query whole nor reach the Jaccard bar,
    so none is a copy by accident. `shuffled`: the same positives and negatives, dealt to the rows at random."""
    rng = random.Random(seed)
    rows = []
    for t in range(topics):
        for _ in range(per_topic):
            other = rng.choice([u for u in range(topics) if u != t])
            rows.append([
                " ".join(rng.sample(topic_words("q", t, words), 2)),
                " ".join(rng.sample(topic_words("d", t, words), 3)),
                " ".join(rng.sample(topic_words("d", other, words), 3)),
            ])  # fmt: skip
    if shuffled:
        pairs = [row[1:] for row in rows]
        rng.shuffle(pairs)
        rows = [[row[0], *pair] for row, pair in zip(rows, pairs)]
    return [tuple(row) for row in rows]


def retrieval_row(i: int, query: str, positive: str, negative, model_name: str = "test-model") -> Row:
    outputs = {"user_query": query, "positive_document": positive}
    if negative is not None:
        outputs["hard_negative_document"] = negative
    return Row(i, "text_retrieval", cell="English", outputs=outputs, model_name=model_name,
               attributes={"task": INSTRUCTION, "language": "English"})  # fmt: skip


def write_run(directory: Path, rows: list) -> Path:
    """A finished run's dir holding `rows` (synthkit Rows, or (query, positive, negative) of retrieval rows)."""
    directory.mkdir(parents=True)
    with open(directory / "data.jsonl", "w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            f.write((row if isinstance(row, Row) else retrieval_row(i, *row)).to_line())
    return directory
