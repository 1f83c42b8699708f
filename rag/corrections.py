"""Closing the loop: human corrections that override known-bad answers.

Matching a new question to a corrected one is the hard part: paraphrases must match,
near misses (same words, another question) must not, and a wrong override is worse
than a missed one. The match has two stages:

1. similarity band: below `band` never, at or above `accept` always;
2. in the band, a check of what differs between the two questions: opposite words never
   match, then a logistic model (fit by `rag corrections calibrate`) over features computed
   with the embedding model alone decides. When `corrections_judge = "llm"`, an equivalence
   call to the chat model with its own prompt decides instead, for every pair from 0.1 below
   the band that the classifier finds plausible.

The features look at the words one question has and the other lacks. A near miss keeps
the frame of the question and swaps a slot ("batch size" for "number of CPUs"): with
the differing words deleted from both, the two questions become nearly the same
sentence (`frame`), and a differing word matters to its own question but is not echoed
by the other (`echo_min`, `lone_max`). A paraphrase rewords the whole question, so
deleting its differing words leaves two different fragments, and the words it swapped
are echoed by the other question's wording. A second logistic model over the same
features tells a paraphrase from a question about something else; it leans on how many
content words the two share (`overlap`), since unrelated questions about one product
share little but its name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from indexes.corrections import Correction, CorrectionStore
from indexes.errors import ConfigError
from indexes.faiss_index import STOPWORDS

Embed = Callable[[list[str]], np.ndarray]  # texts -> unit vectors (an embedder's embed_queries)
FEATURES = ("cosine", "frame", "echo_min", "lone_max", "overlap")
# Matchers saved by earlier versions name no features: 6 weights are these (the count of
# differing words, which taught the classifier that a question reworded all through is a
# paraphrase), 3 weights are LEGACY_FEATURES (before the frame features).
PREVIOUS_FEATURES = ("cosine", "frame", "echo_min", "lone_max", "differing_words")
LEGACY_FEATURES = ("cosine", "jaccard")

# `rag corrections calibrate evals/datasets/corrections_calibration.jsonl` with the bundled
# MiniLM (at most 2% of its near misses and 1% of its unrelated pairs overridden); an index's
# own calibration, once run, replaces it. Paraphrases / near misses / unrelated pairs
# overridden on the held-out pairs of seven writers: corrections_test.jsonl 31% / 0% / 0%,
# corrections_test2.jsonl 33% / 0% / 0%, corrections_test3.jsonl 8% / 1.8% / 0%,
# corrections_test4.jsonl 20% / 0% / 0%, corrections_test5.jsonl 14% / 2.6% / 0%,
# corrections_test6.jsonl 15% / 1.2% / 0%, corrections_test7.jsonl 17% / 1.3% / 0%.
DEFAULT_MATCHER = {"band": 0.67, "accept": 1.0, "p_min": 0.7,
                   "weights": [1.2595, 8.6393, -6.7604, 1.7258, 1.6123, -4.9638],
                   "related_weights": [-4.0344, 7.8674, 0.7458, -9.4179, -1.5874, 5.208], "related_min": 0.7,
                   "review_min": 0.44, "offer_min": 0.34, "offer_related_min": 0.5, "feature_names": list(FEATURES)}

# `calibrate` starts the review queue (`rag corrections suggest`) at the cosine at or above which
# this share of its paraphrases are (`Matcher.review_min`).
REVIEW_SHARE = 0.9
# ... and `ask` offers the asker the corrections near a question (`related_corrections`) from the
# cosine at or above which this share are (`Matcher.offer_min`): an asker's glance costs less than a
# reviewer's decision.
OFFER_SHARE = 0.95

_WORD = re.compile(r"\w+")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ed", "es", "s", "e")


# British spellings to American ones, by ending: "colour", "serialise", "analyse", "centre",
# "catalogue" and "licence" are the same words as "color", "serialize", "analyze", "center",
# "catalog" and "license" ("modelling" / "modeling": `stem`). A US word that happens to have
# a British ending ("promise") is changed alike on both sides, which changes nothing.
_SPELLINGS = [(re.compile(p + r"$"), r) for p, r in [
    (r"(?<=\w{3})is(e|ed|es|ing|ation|ations)", r"iz\1"), (r"(?<=\w)ys(e|ed|es|ing)", r"yz\1"),
    (r"(?<=\w{3})our(s|ed|ing)?", r"or\1"), (r"(?<=\w{3})(t|b)re(s|d)?", r"\1er\2"), (r"(?<=\w{3})ogue(s)?", r"og\1"),
    (r"^(licen|defen|offen|preten)c(e|es|ed|ing)", r"\1s\2"),
    (r"^programme(s)?", r"program\1"),
]]


def american(word: str) -> str:
    for pattern, replacement in _SPELLINGS:
        word, n = pattern.subn(replacement, word)
        if n:
            return word
    return word


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light stem: inflections go ("trials" / "trial", "configure" / "configuration",
    "training" / "train"), meaning stays ("stateful" / "stateless", "transform" / "transfer");
    British spellings become American ("licence" / "license", "modelling" / "modeling")."""
    word = american(word)
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not (suffix == "s" and word.endswith("ss")):
            word = word[: -len(suffix)]
            break
    # a doubled final l, in long stems only ("cancell" / "cancel", "install" / "installed";
    # "fill" is not "file", "roll" is not "role")
    return word[:-1] if len(word) >= 6 and word.endswith("ll") else word


_IRREGULAR = {"can": "can not", "won": "will not", "shan": "shall not", "ain": "is not"}
_NEGATIONS = [(re.compile(r"\b(can|won|shan|ain)['’]t\b", re.I), lambda m: _IRREGULAR[m[1].lower()]),
              (re.compile(r"\bcannot\b", re.I), lambda m: "can not"),
              (re.compile(r"n['’]t\b", re.I), lambda m: " not")]


def expand(text: str) -> str:
    """Negations spelled out ("doesn't" -> "does not", "cannot" -> "can not"), so that a
    contraction neither hides a "not" nor adds stray words ("doesn", "t"). Other contractions
    stay: the "s" of "What's" is a rewritten question frame, which the classifier reads."""
    for pattern, replace in _NEGATIONS:
        text = pattern.sub(replace, text)
    return text


# Contractions of a question's frame ("What's", "it'll", "they're"), spelled out where two
# questions are compared word for word (`same_words`, `question_key`); the classifier reads
# them as written. A possessive "'s" stays ("the actor's method").
_FRAMES = [(re.compile(r"\b(what|who|where|when|why|how|which|that|there|here|it|he|she)['’]s\b", re.I), r"\1 is"),
           (re.compile(r"['’]re\b", re.I), " are"), (re.compile(r"['’]ll\b", re.I), " will"),
           (re.compile(r"['’]ve\b", re.I), " have"), (re.compile(r"['’]d\b", re.I), " would"),
           (re.compile(r"\bi['’]m\b", re.I), "i am")]


def spelled_out(text: str) -> str:
    """`expand`, and the contractions of a question's frame spelled out too."""
    text = expand(text)
    for pattern, replace in _FRAMES:
        text = pattern.sub(replace, text)
    return text


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(expand(text).lower()) if w not in STOPWORDS]


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


def differing_words(a: str, b: str) -> tuple[list[str], list[str]]:
    """The content words of `a` whose stem `b` lacks, and those of `b` that `a` lacks."""
    wa, wb = content_words(a), content_words(b)
    sa, sb = {stem(w) for w in wa}, {stem(w) for w in wb}
    return (list(dict.fromkeys(w for w in wa if stem(w) not in sb)),
            list(dict.fromkeys(w for w in wb if stem(w) not in sa)))


# Question words. The auxiliaries that only frame a question are not among them ("How do I",
# "How can I" and "how would I" ask the same); "should" asks for advice, so it is.
_ASKS = {"how", "what", "when", "where", "which", "who", "why", "should"}
# Stopwords that still change a question: direction, place and logic ("copy files from S3"
# is not "copy files to S3", "on Kubernetes and on VMs" is not "on Kubernetes or on VMs").
_RELATIONS = {"about", "and", "as", "at", "by", "for", "from", "if", "in", "into", "of", "on", "or", "then", "to",
              "with"}


def same_words(a: str, b: str) -> bool:
    """The same content words (by stem) and relation words in the same order, and the same
    question words: the same question, however it is cased or punctuated, and whichever
    auxiliary frames it ("How can I upgrade?" is "How do I upgrade?"; "When does it run?"
    is not "Why does it run?", "multiple models behind one endpoint" is not "one model
    behind multiple endpoints", "from S3" is not "to S3"). Questions with no content words
    at all are never the same by this rule."""
    words = [_WORD.findall(spelled_out(q).lower()) for q in (a, b)]
    kept = [[stem(w) for w in ws if w not in STOPWORDS or w in _RELATIONS] for ws in words]
    asks = [{w for w in ws if w in _ASKS} for ws in words]
    return bool(content_words(a)) and kept[0] == kept[1] and asks[0] == asks[1]


# Words that, swapped for one another, ask the opposite: "How do I enable TLS?" is not "How do
# I disable TLS?". Each group is "one side / the other side"; words are compared by stem, and a
# negating prefix makes an opposite too ("install" / "uninstall", "connect" / "disconnect").
# Synonyms sit on the same side ("read" and "load", "remove" and "drop"). To a small embedding
# model such a swap looks like a one-word paraphrase ("convert" / "turn into"). The rule holds
# only where that one swap is all that differs: a question that rewords more ("uninstall the
# package" / "remove the installed package") is the classifier's. Words that can name a problem
# and its fix are left out ("Why is it slow?", "How do I make it fast?").
_OPPOSITE_GROUPS = """
enable/disable | start begin/stop end finish | open/close | up/down | before/after | first/last |
more increase raise grow high higher big bigger large larger long longer/fewer less decrease reduce shrink low lower
small smaller short shorter | fast faster quick quicker/slow slower | cheap cheaper/expensive costly |
max maximum highest/min minimum lowest |
best/worst | read load/write save | get/put | add insert create/remove delete drop destroy | upgrade/downgrade |
push/pull | upload/download | import/export | input/output | encode/decode | lock/unlock | show/hide |
allow accept include permit/deny reject exclude block forbid | attach/detach | earliest/latest | oldest/newest |
previous/next | sync synchronous/async asynchronous | local/remote | public/private | internal/external |
inbound/outbound | client/server | send/receive | request/response | enter/exit | join/leave | pause/resume |
horizontal/vertical | static/dynamic | explicit/implicit | manual/automatic | above/below | ascending/descending |
inside/outside | allocate acquire/free release deallocate | online/offline | left/right | top/bottom |
parent/child | upstream/downstream | set/unset | zip/unzip | pin/unpin | encrypt/decrypt | enqueue/dequeue |
grant/revoke | expand/collapse | maximize/minimize | valid/invalid | login/logout
"""
_NEGATING_PREFIXES = ("un", "dis", "de", "non")
# Particles whose opposite is a stopword, so that a swap leaves one content word on one side
# only: "turn on" / "turn off", "scale in" / "scale out", "log in" / "log out"; after these
# verbs only ("fill in" and "fill out" a form are the same).
_PARTICLES = {"off": "on", "out": "in"}
_PARTICLE_VERBS = frozenset(stem(form) for verb in ("turn", "switch", "toggle", "power", "scale", "log", "sign", "opt",
                                                    "zoom", "check", "swap", "page", "plug", "clock", "phase")
                            for form in (verb, verb + "s", verb + "ed", verb + "ing", verb + verb[-1] + "ed",
                                         verb + verb[-1] + "ing", verb[:-1] + "ed", verb[:-1] + "ing"))
# Words that turn a question around ("How do I keep it open?", "How do I stop it from closing?";
# "Why is it down?", "How do I bring it up?"): with one in only one of the two questions, an
# opposite may be a paraphrase, and the classifier decides.
_TURNS = frozenset(stem(w) for w in ("not", "no", "never", "without", "prevent", "avoid", "keep", "instead", "why",
                                      "too", "undo", "revert", "restore", "again", "back"))


def _opposites() -> dict[str, set[str]]:
    opposite: dict[str, set[str]] = {}
    for group in _OPPOSITE_GROUPS.split("|"):
        one, other = ({stem(w) for w in side.split()} for side in group.split("/"))
        for word in one:
            opposite.setdefault(word, set()).update(other)
        for word in other:
            opposite.setdefault(word, set()).update(one)
    return opposite


_OPPOSITE = _opposites()


def _negates(a: str, b: str) -> bool:
    return any(a == prefix + b and len(b) >= 4 for prefix in _NEGATING_PREFIXES)


def opposed(a: str, b: str) -> tuple[str, str] | None:
    """The one content word each question has and the other lacks, when the two are opposites
    ("enable" / "disable", "upload" / "download", "install" / "uninstall"), unless one
    question is turned around by a word the other lacks ("not", "keep", "why", "again");
    otherwise None. Such questions ask different things however similar they are."""
    only_a, only_b = differing_words(a, b)
    words = [_WORD.findall(expand(q).lower()) for q in (a, b)]
    if not only_a and len(only_b) == 1 and _particle(only_b[0], words[0], words[1]):
        only_a = [_PARTICLES[only_b[0].lower()]]
    elif not only_b and len(only_a) == 1 and _particle(only_a[0], words[1], words[0]):
        only_b = [_PARTICLES[only_a[0].lower()]]
    if len(only_a) != 1 or len(only_b) != 1:
        return None
    (x,), (y,) = only_a, only_b
    sx, sy = stem(x), stem(y)
    if not (sy in _OPPOSITE.get(sx, ()) or _negates(sx, sy) or _negates(sy, sx)
            or _PARTICLES.get(x.lower()) == y.lower() or _PARTICLES.get(y.lower()) == x.lower()):
        return None
    turns = [_TURNS & {stem(w) for w in ws} for ws in words]
    return (x, y) if turns[0] == turns[1] else None


def _particle(word: str, other: list[str], own: list[str]) -> bool:
    """`word` ("off", "out") is a particle after one of `_PARTICLE_VERBS`, and the other
    question has that verb followed by its opposite ("on", "in") where this one does not:
    "How do I turn off sync?" / "How do I turn on sync?"."""
    opposite = _PARTICLES.get(word.lower())
    if opposite is None:
        return False
    def phrases(words: list[str]) -> set[tuple[str, str]]:
        return {(stem(a), b) for a, b in zip(words, words[1:])}

    verbs = {verb for verb, w in phrases(own) if w == word.lower() and verb in _PARTICLE_VERBS}
    theirs, mine = phrases(other), phrases(own)
    return any((verb, opposite) in theirs and (verb, opposite) not in mine for verb in verbs)


def question_key(question: str) -> str:
    """A question, case, punctuation and contractions aside: how a review queue tells repeats."""
    return " ".join(_WORD.findall(spelled_out(question).lower()))


def _without(text: str, words: list[str]) -> str:
    """`text` without `words` (the same tokenization as `content_words`); `text` itself if
    nothing but punctuation would be left."""
    out = text
    for word in words:
        out = re.sub(r"(?<!\w)" + re.escape(word) + r"(?!\w)", " ", out, flags=re.IGNORECASE)
    out = re.sub(r"\s+", " ", out).strip()
    return out if _WORD.search(out) else text


def embed_once(embed: Embed, known: dict[str, np.ndarray] | None = None) -> Embed:
    """`embed` that embeds each text once, starting from the vectors in `known`: the
    classifier's texts recur across the pairs of one question, or of one scan."""
    known = {} if known is None else known

    def memo(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, embed(missing)))
        return np.stack([known[t] for t in texts])
    return memo


def overlap(a: str, b: str) -> float:
    """The content words (by stem) the two questions share, over all they have (1.0 when
    neither has any): LEGACY_FEATURES' "jaccard", FEATURES' "overlap"."""
    sa, sb = content_stems(a), content_stems(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def legacy_features(a: str, b: str, similarity: float) -> list[float]:
    return [similarity, overlap(a, b)]


def features(a: str, b: str, similarity: float, embed: Embed, names: tuple[str, ...] = FEATURES) -> list[float]:
    """The features `names` (FEATURES, or PREVIOUS_FEATURES) of the question pair (a, b):

    - frame: cosine of a and b once each has lost the words the other lacks;
    - for each differing word w of one question q (the other being o): its importance to
      q, 1 - cos(q without w, q), and its echo in o, cos(q, o) - cos(q without w, o);
      echo_min is the smallest echo, lone_max the largest importance minus echo;
    - overlap: the content words (by stem) the two share, over all they have;
    - differing_words (PREVIOUS_FEATURES): how many differ, both sides together.
    One call to `embed` with 4 + (number of differing words) short texts."""
    a, b = expand(a), expand(b)
    only_a, only_b = differing_words(a, b)
    lexical = {"overlap": overlap(a, b), "differing_words": float(len(only_a) + len(only_b))}
    if not only_a and not only_b:
        values = {"cosine": similarity, "frame": similarity, "echo_min": 0.0, "lone_max": 0.0, **lexical}
        return [values[n] for n in names]
    texts = [a, b, _without(a, only_a), _without(b, only_b)]
    texts += [_without(a, [w]) for w in only_a] + [_without(b, [w]) for w in only_b]
    v = embed(texts)
    va, vb = v[0], v[1]
    cosine = float(va @ vb)
    frame = float(v[2] @ v[3])
    dropped_a, dropped_b = v[4:4 + len(only_a)], v[4 + len(only_a):]
    importance = np.concatenate([1 - dropped_a @ va, 1 - dropped_b @ vb])
    echo = np.concatenate([cosine - dropped_a @ vb, cosine - dropped_b @ va])
    values = {"cosine": cosine, "frame": frame, "echo_min": float(echo.min()),
              "lone_max": float((importance - echo).max()), **lexical}
    return [values[n] for n in names]


@dataclass
class Matcher:
    band: float
    accept: float
    p_min: float
    weights: list[float]  # bias, then one per feature (`feature_names`)
    # A second classifier over the same features: paraphrase versus a question about
    # something else (the nearest correction of most questions is unrelated to them).
    related_weights: list[float] | None = None
    related_min: float = 0.5
    # With an LLM judge (`corrections_judge = "llm"`), the judge decides every pair from
    # `judge_floor` up (default: 0.1 below the band) that the classifier gives at least this probability
    # and does not find to be about something else; the classifier only picks what it sees.
    judge_min: float = 0.3
    # With an LLM judge: the similarity its zone starts from (None: 0.1 below the band). It can
    # only widen the zone: a floor above the band counts as the band.
    judge_floor: float | None = None
    # The similarity from which the review queue (`Assistant.suggest_links`) shows a question a
    # correction did not get: `calibrate` sets it to the cosine at or above which REVIEW_SHARE of
    # its paraphrases are. None (a matcher saved before): 0.1 below the band. It can only widen
    # the queue: a value above that counts as 0.1 below the band.
    review_min: float | None = None
    # The similarity from which `ask` offers the asker a correction it did not apply
    # (`Assistant.related_corrections`): `calibrate` sets it to the cosine at or above which
    # OFFER_SHARE of its paraphrases are. None (a matcher saved before): the review floor. It can
    # only widen the offers: a value above the review floor counts as the review floor.
    offer_min: float | None = None
    # What the second classifier must give a question for it to be offered one (None: `related_min`;
    # never above it): `calibrate` sets the highest at which the offers still hold REVIEW_SHARE of
    # its paraphrases. The asker, not the classifier, decides what an offer is worth.
    offer_related_min: float | None = None
    # What the weights weigh (FEATURES for a matcher calibrated now); None for one saved by an
    # earlier version: PREVIOUS_FEATURES for 6 weights, LEGACY_FEATURES for 3.
    feature_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.feature_names is not None:
            self.feature_names = list(self.feature_names)
            known = set(FEATURES) | set(PREVIOUS_FEATURES)
            if self.feature_names != list(LEGACY_FEATURES) and not set(self.feature_names) <= known:
                raise ConfigError(f"this correction matcher weighs features this version of rag does not know "
                                  f"({', '.join(sorted(set(self.feature_names) - known))}): upgrade rag, or run "
                                  f"`rag corrections calibrate` to fit one it knows")
        elif len(self.weights) not in (len(LEGACY_FEATURES) + 1, len(PREVIOUS_FEATURES) + 1):
            raise ConfigError(f"a correction matcher saved without feature names has {len(self.weights)} weights, "
                              f"not {len(LEGACY_FEATURES) + 1} or {len(PREVIOUS_FEATURES) + 1}: run `rag corrections calibrate`")
        for name, weights in (("weights", self.weights), ("related_weights", self.related_weights)):
            if weights is not None and len(weights) != len(self.names) + 1:
                raise ConfigError(f"a correction matcher's {name} has {len(weights)} values for "
                                  f"{len(self.names)} features: run `rag corrections calibrate`")

    @classmethod
    def from_dict(cls, data: dict | None) -> "Matcher":
        """A saved matcher as it was saved (one from before the second classifier has none),
        or the default."""
        if not data:
            return cls(**DEFAULT_MATCHER)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def names(self) -> tuple[str, ...]:
        if self.feature_names is not None:
            return tuple(self.feature_names)
        return LEGACY_FEATURES if len(self.weights) == len(LEGACY_FEATURES) + 1 else PREVIOUS_FEATURES

    @property
    def legacy(self) -> bool:
        return self.names == LEGACY_FEATURES

    def features(self, a: str, b: str, similarity: float, embed: Embed | None) -> list[float]:
        if self.legacy:
            return legacy_features(a, b, similarity)
        if embed is None:
            raise ValueError("this matcher needs the embedding model (embed=embedder.embed_queries)")
        return features(a, b, similarity, embed, self.names)

    def probability(self, values: list[float], weights: list[float] | None = None) -> float:
        weights = self.weights if weights is None else weights
        z = weights[0] + float(np.dot(weights[1:], values))
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def decide(self, a: str, b: str, similarity: float, judge: Callable[[str, str], bool] | None = None,
               embed: Embed | None = None) -> tuple[bool, str]:
        """(match?, why)."""
        matched, why, _ = self.assess(a, b, similarity, judge, embed)
        return matched, why

    def assess(self, a: str, b: str, similarity: float, judge: Callable[[str, str], bool] | None = None,
               embed: Embed | None = None) -> tuple[bool, str, float | None]:
        """(match?, why, the classifier's probability of a paraphrase: None where it was not
        asked, because the similarity decided or the question is about something else).

        Without `judge`, the classifier decides in the band. With one, the judge decides
        every pair from `judge_floor` (default: 0.1 below the band) up that the classifier gives
        at least `judge_min` (a matcher saved before the frame features: the judge may only
        veto)."""
        decides = judge is not None and not self.legacy
        floor = (self.default_judge_floor if self.judge_floor is None else min(self.judge_floor, self.band)) if decides else self.band
        if similarity < min(floor, self.accept):
            return False, f"similarity {similarity:.3f} < {floor}", None
        if not self.legacy and (words := opposed(a, b)):
            return False, f"opposite words: {words[0]!r} / {words[1]!r}", None
        if similarity >= self.accept:
            return True, f"similarity {similarity:.3f} >= {self.accept}", None
        if not self.legacy and similarity >= self.band and same_words(a, b):
            return True, f"in band, similarity {similarity:.3f}, the same words", None
        zone = "in band" if similarity >= self.band else f"below the band, similarity {similarity:.3f}"
        related, p = self._classify(a, b, similarity, embed)
        if p is None:
            return False, f"{zone}, about something else: p={related:.2f} < {self.related_min}", None
        if decides:
            if p < self.judge_min:
                return False, f"{zone}, classifier p={p:.2f} < {self.judge_min}: the LLM judge was not asked", p
            if judge(a, b):
                return True, f"{zone}, the LLM judge says the same question (classifier p={p:.2f})", p
            return False, f"{zone}, the LLM judge says the questions differ (classifier p={p:.2f})", p
        if p < self.p_min:
            return False, f"in band, classifier p={p:.2f} < {self.p_min}", p
        if judge is not None and not judge(a, b):
            return False, "in band, the LLM judge says the questions differ", p
        return True, f"in band, classifier p={p:.2f}" + (" and LLM judge agree" if judge else ""), p

    @property
    def default_judge_floor(self) -> float:
        """0.1 below the band: where the LLM judge's zone starts by default."""
        return round(max(0.0, self.band - 0.1), 4)

    @property
    def review_floor(self) -> float:
        """The similarity from which a question a correction did not get is put before a
        reviewer (`Assistant.suggest_links`): `review_min`, or 0.1 below the band."""
        below = self.default_judge_floor
        return below if self.review_min is None else round(min(self.review_min, below), 4)

    @property
    def offer_floor(self) -> float:
        """The similarity from which `ask` offers the asker a correction it did not apply:
        `offer_min`, or the review floor."""
        floor = self.review_floor
        return floor if self.offer_min is None else round(min(self.offer_min, floor), 4)

    def score(self, a: str, b: str, similarity: float, embed: Embed | None = None,
              offer: bool = False) -> float | None:
        """The classifier's probability that `b` asks what `a` asks, at any similarity; None
        when the second classifier says `b` is about something else (by `offer_related_min`
        with `offer`), or it asks the opposite."""
        if not self.legacy and opposed(a, b):
            return None
        related_min = min(self.related_min, self.offer_related_min) if offer and self.offer_related_min is not None else None
        return self._classify(a, b, similarity, embed, related_min)[1]

    def _classify(self, a: str, b: str, similarity: float, embed: Embed | None,
                  related_min: float | None = None) -> tuple[float | None, float | None]:
        """(the second classifier's probability that b is related, if it has one; the first's
        that b is a paraphrase, or None when the second says b is about something else: below
        `related_min`, by default the matcher's)."""
        values = self.features(a, b, similarity, embed)
        related = self.probability(values, self.related_weights) if self.related_weights is not None else None
        if related is not None and related < (self.related_min if related_min is None else related_min):
            return related, None
        return related, self.probability(values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- calibration ---------------------------------------------------------------------------
def _fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 4000, lr: float = 0.5, l2: float = 1e-2) -> list[float]:
    """Weights (bias first) of an L2-regularized logistic regression, by gradient descent."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w = np.zeros(z.shape[1] + 1)
    design = np.hstack([np.ones((len(z), 1)), z])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ w))
        w -= lr * (design.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]])
    raw = w[1:] / std  # back to raw feature scale
    return [float(w[0] - (w[1:] * mean / std).sum()), *map(float, raw)]


def unrelated_pairs(pairs: list[dict], limit: int = 300, seed: int = 0) -> list[dict]:
    """Questions of unconnected pairs crossed with each other: most questions a user asks have
    nothing to do with any correction, and their nearest correction must not match either.
    A near-miss dataset alone never shows the classifier such a pair. Two questions linked
    through any pair of the dataset (a chain a-b, b-c) are never crossed."""
    group: dict[str, str] = {}

    def root(q: str) -> str:
        while group.setdefault(q, q) != q:
            group[q] = group[group[q]]
            q = group[q]
        return q

    for p in pairs:
        group[root(p["a"])] = root(p["b"])
    anchors = list(dict.fromkeys(p["a"] for p in pairs))
    questions = list(dict.fromkeys(p["b"] for p in pairs))
    if limit <= 0:
        return []
    each = -(-limit // max(1, len(anchors)))
    rng = np.random.default_rng(seed)
    crossed = []
    for a in anchors:
        others = [q for q in questions if root(q) != root(a)]
        for i in rng.permutation(len(others))[:each]:
            crossed.append({"a": a, "b": others[i], "match": False, "unrelated": True})
    return [crossed[i] for i in sorted(rng.permutation(len(crossed))[:limit])]


def calibrate(pairs: list[dict], similarity: Callable[[list[str], list[str]], np.ndarray], max_false_rate: float = 0.02,
              embed: Embed | None = None, unrelated: int = 300, max_unrelated_rate: float = 0.01) -> dict[str, Any]:
    """Choose the matcher that overrides the most paraphrases while wrongly overriding at most
    `max_false_rate` of the near misses and `max_unrelated_rate` of up to `unrelated` pairs
    of questions from unconnected pairs. `pairs`: [{"a": q, "b": q2, "match": bool}].
    With `embed`, the classifier uses the frame features; without, cosine and word overlap."""
    counts = [sum(bool(p["match"]) == m for p in pairs) for m in (True, False)]
    if min(counts) < 2:
        raise ValueError(f"calibration needs paraphrases and near misses, at least two of each: this has "
                         f"{counts[0]} paraphrases and {counts[1]} near misses")
    pairs = list(pairs) + unrelated_pairs(pairs, unrelated)
    sims = np.asarray(similarity([p["a"] for p in pairs], [p["b"] for p in pairs]), dtype=float)
    y = np.array([bool(p["match"]) for p in pairs])
    far = np.array([bool(p.get("unrelated")) for p in pairs])
    if embed is not None:
        x = np.array([features(p["a"], p["b"], float(s), embed) for p, s in zip(pairs, sims)])
    else:
        x = np.array([legacy_features(p["a"], p["b"], float(s)) for p, s in zip(pairs, sims)])
    # Pairs that swap opposite words are decided by that rule, as in `assess`; the classifiers
    # learn from the rest. The first learns paraphrase versus near miss; unrelated pairs are for
    # the band, which keeps them out (a linear model asked to do both learns mostly cosine).
    opposite = np.array([embed is not None and opposed(p["a"], p["b"]) is not None for p in pairs])
    weights = _fit_logistic(x[~far & ~opposite], y[~far & ~opposite].astype(float))
    kept = (y | far) & ~opposite
    related_weights = _fit_logistic(x[kept], y[kept].astype(float)) if far.any() else None

    def sigmoid(w):
        return 1 / (1 + np.exp(-np.clip(w[0] + x @ np.array(w[1:]), -50, 50)))

    probability = sigmoid(weights)
    related = sigmoid(related_weights) if related_weights is not None else np.ones(len(x))
    same = np.array([embed is not None and same_words(p["a"], p["b"]) for p in pairs])  # as `decide` does
    near = ~y & ~far
    best = None
    for related_min in (0.0, 0.3, 0.5, 0.7, 0.9):
        plausible = related >= related_min
        for band in np.arange(0.30, 0.99, 0.01):
            in_band = (sims >= band - 1e-9) & plausible
            for accept in (*np.arange(band, 1.0, 0.02), 1.0):
                sure = sims >= accept - 1e-9
                for p_min in (*np.arange(0.30, 0.96, 0.05), 0.97, 0.98, 0.99, 0.995):
                    decided = (sure | (in_band & (probability >= p_min)) | (same & (sims >= band - 1e-9))) & ~opposite
                    false_rate = decided[near].mean() if near.any() else 0.0
                    far_rate = decided[far].mean() if far.any() else 0.0
                    if false_rate > max_false_rate + 1e-9 or far_rate > max_unrelated_rate + 1e-9:
                        continue
                    recall = decided[y].mean() if y.any() else 0.0
                    key = (recall, -false_rate, -far_rate, related_min, band, accept)  # ties: the stricter
                    if best is None or key > best[0]:
                        best = (key, (round(float(band), 2), round(float(accept), 2), round(float(p_min), 3),
                                      related_min), recall, false_rate, far_rate)
    if best is None:
        raise ValueError(f"no matcher overrides at most {max_false_rate:.0%} of the near misses and "
                         f"{max_unrelated_rate:.0%} of the unrelated pairs; check the labels, or allow more")
    _, (band, accept, p_min, related_min), recall, false_rate, far_rate = best
    # Below the band, the second classifier is what keeps questions about something else out of
    # the review queue and the offers: without one (no unrelated pairs), both keep their floor.
    def floor_for(share: float) -> float | None:  # the cosine at or above which `share` of the paraphrases are
        return (math.floor(round(float(np.quantile(sims[y], 1 - share)) * 100, 6)) / 100
                if y.any() and related_weights is not None else None)

    offer_min, offer_related_min = floor_for(OFFER_SHARE), None
    if offer_min is not None:  # the highest bar, at most `related_min`, at which the matcher and the
        # offers reach REVIEW_SHARE of the paraphrases (0 if none does: the asker alone decides)
        applied = ((sims >= accept - 1e-9) | ((sims >= band - 1e-9) & (related >= related_min) & (probability >= p_min))
                   | (same & (sims >= band - 1e-9))) & ~opposite
        for bar in sorted({related_min, 0.5, 0.3, 0.0}, reverse=True):
            if bar <= related_min:
                offer_related_min = bar
                if (applied | ((sims >= offer_min - 1e-9) & (related >= bar) & ~opposite))[y].mean() >= REVIEW_SHARE:
                    break
    matcher = Matcher(band, accept, p_min, weights, related_weights, related_min,
                      feature_names=list(LEGACY_FEATURES if embed is None else FEATURES),
                      review_min=floor_for(REVIEW_SHARE), offer_min=offer_min, offer_related_min=offer_related_min)
    thresholds = []
    for t in np.arange(0.5, 1.0, 0.05):
        matched = sims[~far] >= t
        tp, fp = int((matched & y[~far]).sum()), int((matched & near[~far]).sum())
        thresholds.append({"threshold": round(float(t), 2), "precision": tp / (tp + fp) if tp + fp else 1.0,
                           "recall": tp / int(y.sum()) if y.any() else 0.0,
                           "false_override_rate": fp / int(near.sum()) if near.any() else 0.0})
    return {"matcher": matcher.to_dict(), "recall": float(recall), "false_override_rate": float(false_rate),
            "pairs": int((~far).sum()), "unrelated_pairs": int(far.sum()), "unrelated_override_rate": float(far_rate),
            "features": list(matcher.names), "cosine_only": thresholds,
            "similarities": [float(s) for s in sims[~far]], "labels": [bool(v) for v in y[~far]]}


def pair_similarity(embedder) -> Callable[[list[str], list[str]], np.ndarray]:
    """Cosine similarity of each (a, b) question pair, embedded as questions are at ask time."""
    return lambda a, b: (embedder.embed_queries(a) * embedder.embed_queries(b)).sum(axis=1)


def evaluate_matcher(matcher: Matcher, pairs: list[dict], similarity, judge=None, embed: Embed | None = None,
                     unrelated: int = 300, review_floor: float | None = None) -> dict[str, Any]:
    """Paraphrases overridden, near misses overridden, and unrelated questions (the dataset's
    questions crossed between pairs, up to `unrelated`) overridden; and of the rest, what the
    review queue (`rag corrections suggest`) would show a reviewer from `review_floor`
    (default: the matcher's)."""
    crossed = unrelated_pairs(pairs, unrelated)
    every = list(pairs) + crossed
    sims = similarity([p["a"] for p in every], [p["b"] for p in every])
    rows = []
    floor = matcher.review_floor if review_floor is None else review_floor  # as `Assistant.suggest_links`
    for p, s in zip(every, sims):
        s = float(s)
        matched, why, probability = matcher.assess(p["a"], p["b"], s, judge, embed)
        if not matched and probability is None and floor <= s < matcher.band:
            probability = matcher.score(p["a"], p["b"], s, embed)
        rows.append({**p, "similarity": s, "matched": matched, "why": why,
                     "suggested": not matched and probability is not None and s >= floor})
    rows, far = rows[:len(pairs)], rows[len(pairs):]
    paraphrases = [r for r in rows if r["match"]]
    near = [r for r in rows if not r["match"]]
    overridden = [r for r in rows if r["matched"]]
    missed = [r for r in paraphrases if not r["matched"]]
    suggested = [r for r in rows + far if r["suggested"]]
    return {
        "pairs": len(rows),
        "paraphrase_recall": sum(r["matched"] for r in paraphrases) / len(paraphrases) if paraphrases else 0.0,
        "near_miss_override_rate": sum(r["matched"] for r in near) / len(near) if near else 0.0,
        "override_precision": sum(r["match"] for r in overridden) / len(overridden) if overridden else 1.0,
        "unrelated_pairs": len(far),
        "unrelated_override_rate": sum(r["matched"] for r in far) / len(far) if far else 0.0,
        # the review queue (`rag corrections suggest`), were every question of the set logged
        "missed_paraphrases_suggested": sum(r["suggested"] for r in missed) / len(missed) if missed else 1.0,
        "suggestions": len(suggested),
        "suggestion_precision": sum(bool(r["match"]) for r in suggested) / len(suggested) if suggested else 1.0,
        "reviewed_recall": sum(r["matched"] or r["suggested"] for r in paraphrases) / len(paraphrases) if paraphrases else 0.0,
        "review_floor": floor,
        "rows": rows,
        "unrelated_rows": [r for r in far if r["matched"]],
    }


def plot_calibration(result: dict, path: str | Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = [r["threshold"] for r in result["cosine_only"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, [r["recall"] for r in result["cosine_only"]], marker="o", label="paraphrases overridden (recall)")
    ax.plot(t, [r["false_override_rate"] for r in result["cosine_only"]], marker="o", label="near misses overridden")
    ax.plot(t, [r["precision"] for r in result["cosine_only"]], linestyle="--", label="precision")
    m = result["matcher"]
    ax.axvspan(m["band"], m["accept"], alpha=0.15, label="band checked by the classifier")
    ax.scatter([m["band"]], [result["recall"]], color="black", zorder=5,
               label=f"two-stage matcher: recall {result['recall']:.2f}, false {result['false_override_rate']:.2f}")
    ax.set_xlabel("cosine similarity threshold")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("Correction matching")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def link_pairs(store: CorrectionStore) -> list[dict]:
    """The questions reviewers linked to corrections, as calibration pairs: a `same_as` link
    is a paraphrase of its correction's question, a `not_same_as` link a near miss. A link an
    asker confirmed that no reviewer has checked is left out."""
    pairs = []
    for c in store.list(True):
        if c.unreviewed:  # an asker's, not yet a reviewer's
            continue
        target = store.get(c.linked_to) if c.linked_to else None
        if target is not None:
            pairs.append({"a": target.question, "b": c.question, "match": bool(c.same_as), "link": c.id})
    return pairs


# The question-pair files `rag eval` and `rag corrections calibrate` read: ours, and the
# shapes public paraphrase sets come in (QQP, PAWS/MRPC, anchor-positive-negative triplets).
_PAIR_FIELDS = (("a", "b"), ("question1", "question2"), ("sentence1", "sentence2"), ("q1", "q2"),
                ("text1", "text2"))
_LABEL_FIELDS = ("match", "is_duplicate", "label", "is_paraphrase", "paraphrase")
_TRUE = {"true", "yes", "y", "paraphrase", "same", "match", "duplicate"}
_FALSE = {"false", "no", "n", "near_miss", "near miss", "near-miss", "different", "no_match", "not_duplicate"}
_ANCHOR_FIELDS = ("a", "question", "anchor", "query")
_TRIPLET_FIELDS = ("positive", "negative")
_GROUP_FIELDS = {True: ("paraphrases", "positives"), False: ("near_misses", "negatives", "hard_negatives")}
PAIRS_HELP = ('one of {"a": question, "b": question, "match": true/false} (or question1/question2/is_duplicate, '
              'sentence1/sentence2/label), {"question": q, "paraphrases": [...], "near_misses": [...]}, or '
              '{"anchor": q, "positive": q, "negative": q}')


def _shape(row: Any) -> str | None:
    """Which shape of PAIRS_HELP a record has, by its fields alone: "pair", "triplet", "group",
    or None (a question set for retrieval, say). A record of two shapes at once is an error."""
    if not isinstance(row, dict):
        return None
    shapes = []
    if any(f in row for f in _LABEL_FIELDS) and any(x in row and y in row for x, y in _PAIR_FIELDS):
        shapes.append("pair")
    if any(f in row for f in _ANCHOR_FIELDS):
        shapes += ["triplet"] * any(f in row for f in _TRIPLET_FIELDS)
        shapes += ["group"] * any(f in row for fields in _GROUP_FIELDS.values() for f in fields)
    if len(shapes) > 1:
        raise ValueError(f"a record both a {shapes[0]} and a {shapes[1]}: expected one shape per record")
    return shapes[0] if shapes else None


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE | _FALSE:
        return text in _TRUE
    try:
        number = float(text if text is not None else value)
    except (TypeError, ValueError):
        number = None
    if number in (0.0, 1.0):
        return bool(number)
    raise ValueError(f"a label of {value!r}: expected true/false, 1/0, yes/no, paraphrase/near_miss or same/different")


def _question(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field!r} is {'blank' if isinstance(value, str) else type(value).__name__}, not a question")
    return value.strip()


def pairs_from_row(row: Any) -> list[dict] | None:
    """The labelled pairs one record of a pair file holds ({"a", "b", "match"} each), or None
    when the record has none of the shapes of PAIRS_HELP. Raises ValueError for a record of a
    known shape with a bad value."""
    shape = _shape(row)
    if shape == "pair":
        label = next(f for f in _LABEL_FIELDS if f in row)
        first, second = next((x, y) for x, y in _PAIR_FIELDS if x in row and y in row)
        return [{"a": _question(row[first], first), "b": _question(row[second], second), "match": _label(row[label])}]
    if shape is None:
        return None
    anchor = next(f for f in _ANCHOR_FIELDS if f in row)
    a = _question(row[anchor], anchor)
    if shape == "triplet":
        return [{"a": a, "b": _question(row[f], f), "match": f == "positive"} for f in _TRIPLET_FIELDS if f in row]
    pairs = []
    for match, fields in _GROUP_FIELDS.items():
        for field in (f for f in fields if f in row):
            others = row[field]
            if not isinstance(others, list):
                raise ValueError(f"{field!r} is {type(others).__name__}, not a list of questions")
            pairs += [{"a": a, "b": _question(q, field), "match": match} for q in others]
    return pairs


def _records(path: Path):
    """(where, record) of a JSONL, JSON array, CSV or TSV file, as read (JSONL line by line);
    `where` names the line, row or record for an error."""
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8-sig", newline="" if suffix in (".csv", ".tsv") else None) as fh:
        if suffix in (".csv", ".tsv"):
            import csv

            # a TSV as GLUE, QQP and PAWS write them: no quoting ('"Hamlet" is by whom?' keeps its quotes)
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if suffix == ".tsv" else csv.DictReader(fh)
            try:
                if reader.fieldnames:
                    reader.fieldnames = [name.strip() for name in reader.fieldnames]
                for row in reader:
                    yield f"{path}:{reader.line_num}", row
            except csv.Error as exc:
                raise ValueError(f"{path}:{reader.line_num}: not {suffix[1:].upper()} ({exc})") from None
            return
        head, blank = fh.read(1), 0
        while head.isspace():
            blank += head == "\n"
            head = fh.read(1)
        if head == "[":
            try:
                data = json.loads(head + fh.read())
            except ValueError as exc:
                raise ValueError(f"{path}: not JSON ({exc})") from None
            for number, record in enumerate(data if isinstance(data, list) else [data], 1):
                yield f"{path}: record {number}", record
            return
        for number, line in enumerate(itertools.chain([head + fh.readline()], fh), 1 + blank):
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
                yield f"{path}:{number}", record


def _shape_or_none(record: Any) -> str | None:
    """The record's shape, None for none, "ambiguous" for two at once."""
    try:
        return _shape(record)
    except ValueError:
        return "ambiguous"


def is_pair_file(path: str | Path) -> bool:
    """Whether the file holds labelled question pairs rather than a question set: a CSV or TSV,
    a JSON array unless its first record is a question with a source, or JSON Lines whose first
    record has the fields of a shape of PAIRS_HELP (its values are for `load_pairs` to check)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = next((line for line in fh if line.strip()), "")
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix.lower() in (".csv", ".tsv"):
        return True
    if first.lstrip().startswith("["):  # a JSON array: of pairs, unless its first record is a question with a source
        try:
            records = json.loads(path.read_text(encoding="utf-8-sig"))
            head = records[0] if isinstance(records, list) and records else None
        except (OSError, UnicodeDecodeError, ValueError):
            return True  # load_pairs says what is wrong
        return not (isinstance(head, dict) and {"question", "source"} <= head.keys() and _shape_or_none(head) is None)
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return _shape_or_none(record) is not None  # two shapes at once counts: load_pairs says what is wrong


def load_pairs(path: str | Path) -> list[dict]:
    """Labelled question pairs, [{"a": question, "b": other question, "match": bool}], from a
    JSONL (or JSON array, CSV or TSV) file of records of any shape in PAIRS_HELP."""
    pairs, records = [], _records(Path(path))
    while True:
        try:
            where, row = next(records)
        except StopIteration:
            break
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x}); "
                             "convert it to UTF-8") from None
        try:
            found = pairs_from_row(row)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if found is None:
            raise ValueError(f"{where}: expected {PAIRS_HELP}")
        pairs += found
    if not pairs:
        raise ValueError(f"{path} holds no question pairs")
    return pairs


_TEXT_FIELDS = ("question", "answer", "author", "reason", "replaces_answer_id", "bad_answer", "review", "id",
                "same_as", "not_same_as")


def correction_from_export(data: Any, model: str) -> Correction:
    """One line of `rag corrections export` as a correction to store with the embedding
    `model`, checked as `Assistant.correct` checks what it writes: a question; an answer, or
    a link to a correction (`same_as` or `not_same_as`, not both) and no answer; sources a
    list of paths; `active` true or false; times as `utc_stamp` takes them. Text loses its
    control characters. ValueError says what is wrong; unknown keys are ignored."""
    from indexes.corrections import utc_stamp
    from rag.guard import clean_text

    if not isinstance(data, dict):
        raise ValueError("expected a JSON object, as `rag corrections export` writes")
    row = {k: v for k, v in data.items() if k in Correction.__dataclass_fields__}
    for key in _TEXT_FIELDS:
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be text, not {json.dumps(value)[:40]}")
        if value is not None:
            row[key] = clean_text(value)
    if not (row.get("question") or "").strip():
        raise ValueError("a correction needs a question")
    if "id" in row and not (row["id"] or "").strip():
        raise ValueError("id must not be empty (leave it out for a new one)")
    if row.get("same_as") and row.get("not_same_as"):
        raise ValueError("a question is linked same_as or not_same_as a correction, not both")
    if row.get("same_as") or row.get("not_same_as"):
        if (row.get("answer") or "").strip():
            raise ValueError("a linked question takes its answer from its correction: its answer must be empty")
        if row.get("sources"):
            raise ValueError("a linked question has no sources of its own")
        row["answer"] = ""
    elif not (row.get("answer") or "").strip():
        raise ValueError("a correction needs its answer (or same_as / not_same_as a correction)")
    sources = row.get("sources")
    if sources is None:
        row["sources"] = []
    elif not (isinstance(sources, list) and all(isinstance(x, str) and x.strip() for x in sources)):
        raise ValueError(f"sources must be a list of paths, not {json.dumps(sources)[:60]}")
    else:
        row["sources"] = [clean_text(x) for x in sources]
    if "active" in row and not isinstance(row["active"], bool):
        raise ValueError(f"active must be true or false, not {json.dumps(row['active'])}")
    if "created_at" in row:  # times compare as text: the store's own format
        if not isinstance(row["created_at"], str):
            raise ValueError(f"created_at {json.dumps(row['created_at'])} is not an ISO 8601 time")
        row["created_at"] = utc_stamp(row["created_at"])
    for key in ("question", "answer"):
        row[key] = row[key].strip()
    if "id" not in row:  # the same line gets the same id: imported twice, even at once, it is stored once
        content = json.dumps([question_key(row["question"]), row["answer"], row.get("same_as"), row.get("not_same_as")])
        row["id"] = hashlib.sha256(content.encode()).hexdigest()[:12]
    row["model"] = model
    return Correction(**row)


def correction_info(correction: Correction, mode: str, similarity: float) -> dict[str, Any]:
    # review: a file the correction cites changed or went since it was written; a reviewer has yet to check it
    return {"id": correction.id, "mode": mode, "author": correction.author, "created_at": correction.created_at,
            "similarity": round(similarity, 4), "question": correction.question, "review": bool(correction.review)}


__all__ = ["Correction", "CorrectionStore", "Matcher", "calibrate", "correction_from_export", "correction_info",
           "evaluate_matcher", "is_pair_file", "link_pairs", "load_pairs", "pairs_from_row", "plot_calibration"]
