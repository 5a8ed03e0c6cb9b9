"""Sentiment tuned for customer-service verbatims: a label, a score in -1..1 and a confidence.

Plain VADER reads social media; a customer writing to a company says more through what happened
than through adjectives. So on top of VADER's offline lexicon (extended with the words of
service: "chased", "overcharged", "sorted", "knowledgeable"...) this model:

- cuts the text into clauses at sentence ends and contrast markers ("but", "however",
  "although", "though", "yet", "except") and gives the clause after "but", "however", "yet" or
  "except" three times the weight, so "the agent was lovely but the refund never came" is about
  the refund;
- adds the valence of service phrases found in a clause: waiting and being on hold, repeat
  contacts ("third time", "again", "still"), being transferred, broken promises, praise idioms
  that VADER misreads ("can't fault", "no hassle", "above and beyond");
- lets outcome phrases (the refund never came, still not resolved, nobody called back)
  dominate politeness by tripling their clause's weight;
- reads sarcasm markers ("thanks for nothing", "oh brilliant", "love waiting", "great, another")
  as turning the clause's praise into complaint;
- damps the polite words of questions and requests ("I'd like to", "can you help"), which are
  not praise, and their mild negatives ("reporting a broken street light");
- reads denied praise ("could have been better", "not the best") as complaint and denied
  complaint ("nothing was too much trouble", "never had a problem") as praise, ironic thanks
  ("thanks for charging me twice") and a praising exclamation before a complaint ("Fantastic,
  my card has been declined") as complaint, and emoji VADER reads as neutral.

Clauses are combined by a weighted mean where a clause's weight grows with its intensity, so a
neutral "I called on Tuesday." does not water down "and nobody has called back".
"""

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Protocol

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class SentimentLabel(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: SentimentLabel
    score: float
    """-1 (angry) to 1 (delighted)."""
    confidence: float
    """0 to 1: how far the score is from the label boundaries and how much the clauses agree."""


@dataclass(frozen=True, slots=True)
class Clause:
    """A part of the text with its own score; ``weight`` is its say in the whole."""

    start: int
    end: int
    score: float
    weight: float


#: Scores at or beyond these are positive or negative; between them, neutral.
POSITIVE_THRESHOLD = 0.1
NEGATIVE_THRESHOLD = -0.1

#: Service words the stock lexicon lacks or misreads (VADER's scale: -4 to 4).
SERVICE_LEXICON: Mapping[str, float] = {
    # complaint
    "chase": -1.2,
    "chased": -1.5,
    "chasing": -1.5,
    "overcharged": -2.2,
    "overcharging": -2.2,
    "shambles": -2.5,
    "nightmare": -2.5,
    "rubbish": -2.0,
    "joke": -1.5,
    "late": -1.2,
    "delayed": -1.4,
    "delay": -1.2,
    "delays": -1.2,
    "faulty": -1.8,
    "damaged": -1.8,
    "broken": -1.8,
    "crashes": -1.6,
    "crashed": -1.6,
    "crashing": -1.6,
    "dismissive": -1.8,
    "ignored": -1.6,
    "ignoring": -1.6,
    "ombudsman": -2.0,
    "unreachable": -1.8,
    "horrendous": -2.8,
    "appalling": -2.8,
    "shocking": -2.5,
    "disgraceful": -2.8,
    "useless": -2.3,
    "pointless": -1.8,
    "rude": -2.3,
    "unhelpful": -2.0,
    "misleading": -2.0,
    "lied": -2.3,
    "cheated": -2.3,
    "scam": -2.8,
    "wasted": -1.8,
    "forever": -0.8,
    "hassle": -1.5,
    "dropped": -1.0,
    "declined": -1.0,
    "mess": -1.8,
    "lost": -1.5,
    "wrong": -1.6,
    "confusing": -1.5,
    "worse": -2.0,
    "unacceptable": -2.5,
    "ridiculous": -2.2,
    "frustrated": -2.2,
    "frustrating": -2.2,
    "gutted": -2.0,
    "shambolic": -2.5,
    "cowboys": -1.8,
    "excuses": -1.5,
    "diabolical": -2.8,
    "sloppy": -1.8,
    "robbed": -2.5,
    "extortionate": -2.5,
    "fobbed": -2.0,
    "unbelievable": -0.5,
    "slow": -1.3,
    "slower": -1.4,
    "sluggish": -1.4,
    "condescending": -2.0,
    "patronising": -2.0,
    "patronizing": -2.0,
    "disrespectful": -2.3,
    "unresponsive": -1.8,
    "stonewalled": -2.0,
    "stonewalling": -2.0,
    "filthy": -2.5,
    "grubby": -1.5,
    "smelly": -1.8,
    "crackly": -1.2,
    "buffering": -1.2,
    "impossible": -1.5,
    "inexcusable": -2.5,
    "unforgivable": -2.5,
    "disorganised": -1.8,
    "disorganized": -1.8,
    "overbooked": -1.5,
    "understaffed": -1.2,
    "doubled": -1.0,
    "tripled": -1.5,
    "mouldy": -2.0,
    "moldy": -2.0,
    "stale": -1.5,
    "jobsworth": -2.0,
    "jobsworths": -2.0,
    "ghosted": -2.0,
    "runaround": -2.0,
    "disgusted": -2.8,
    "shoddy": -2.2,
    "abysmal": -3.0,
    "atrocious": -3.0,
    "unreliable": -1.8,
    "debacle": -2.2,
    "botched": -2.2,
    "bodged": -2.0,
    "incorrect": -1.2,
    "inept": -2.2,
    "substandard": -2.0,
    "mediocre": -1.2,
    "unanswered": -1.5,
    "nonexistent": -1.5,
    "non-existent": -1.5,
    "rip-off": -2.5,
    "ripoff": -2.5,
    "cowboy": -1.5,
    "fleeced": -2.5,
    "scammed": -2.8,
    "scammers": -2.8,
    "conned": -2.5,
    "farcical": -2.2,
    "laughable": -1.8,
    "livid": -2.8,
    "furious": -2.8,
    "infuriating": -2.6,
    "clueless": -2.0,
    "overcharge": -2.0,
    "unusable": -2.0,
    "glitchy": -1.6,
    "buggy": -1.6,
    "defective": -1.8,
    "leaking": -1.2,
    "unfit": -1.8,
    "disconnected": -1.0,
    "stranded": -1.8,
    "rerouted": -0.5,
    "missing": -1.0,
    # praise
    "legend": 2.0,
    "chuffed": 2.5,
    "gem": 2.0,
    "smashing": 2.5,
    "sorted": 1.8,
    "resolved": 1.6,
    "fixed": 1.4,
    "solved": 1.6,
    "quick": 1.2,
    "quickly": 1.2,
    "fast": 1.2,
    "prompt": 1.4,
    "promptly": 1.4,
    "rapid": 1.2,
    "speedy": 1.4,
    "efficient": 1.8,
    "smooth": 1.6,
    "smoothly": 1.6,
    "seamless": 1.8,
    "painless": 1.8,
    "knowledgeable": 2.0,
    "professional": 1.5,
    "patient": 1.6,
    "courteous": 1.8,
    "reassuring": 1.6,
    "superb": 3.0,
    "spotless": 1.8,
    "delighted": 2.8,
    "impressed": 2.2,
    "impressive": 2.2,
    "recommend": 1.6,
    "refreshing": 1.6,
    "clear": 1.2,
    "clearer": 1.4,
    "helpful": 2.0,
    "easier": 1.5,
    "improvement": 1.6,
    "lifesaver": 2.8,
    "professionally": 1.5,
    "knowledgable": 2.0,
    "helpfull": 2.0,
    "diligent": 1.6,
    "quicker": 1.2,
    "thorough": 1.6,
    "tidy": 1.2,
    "attentive": 1.8,
    "polite": 1.6,
    "accommodating": 1.8,
    "hassle-free": 2.0,
    "stress-free": 2.0,
    "effortless": 2.0,
    "faultless": 2.5,
    "flawless": 2.5,
    "exemplary": 2.8,
    "first-class": 2.5,
    "spot-on": 2.0,
    "reliable": 1.5,
    "swift": 1.4,
    "swiftly": 1.4,
    "informative": 1.4,
    # polite or everyday words that are not sentiment in a request to a company
    "please": 0.0,
    "like": 0.3,
    "help": 0.6,
    "promise": 0.0,
    "promised": -0.6,
    "important": 0.0,
    "care": 1.0,
    "free": 0.6,
    "credit": 0.2,
    "credited": 0.8,
    "interest": 0.0,
    "save": 0.4,
    "savings": 0.0,
    "dear": 0.0,
    "yes": 0.4,
    "matter": 0.0,
    "share": 0.0,
    "engaged": -0.8,
    "simple": 1.2,
    "simpler": 1.4,
    "deleted": -1.0,
    "soaked": -1.5,
    "pay": 0.0,
    "charges": -0.3,
    "cancel": -0.3,
    "dispute": -0.5,
    "complaint": -0.6,
    "support": 0.3,
    "treat": 0.3,
    "cleared": 0.2,
    "outage": -0.6,
    "expensive": -1.2,
    "overpriced": -2.0,
    "cheap": -0.3,
}


class _Kind(StrEnum):
    PLAIN = "plain"
    OUTCOME = "outcome"  # what happened outweighs how it was said
    REPORTED = "reported"  # a claim the customer quotes ("I was told it was fixed")
    REQUEST = "request"  # a question or request: "gift", "free", "help" are not praise
    SARCASM = "sarcasm"  # the clause's praise is ironic


@dataclass(frozen=True, slots=True)
class _PhraseRule:
    pattern: re.Pattern[str]
    valence: float
    kind: _Kind
    opens_clause: bool


_NUMBER = r"(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|several|many|multiple)"
_SPAN_OF_TIME = (
    rf"(?:over |more than |almost |nearly |about )?{_NUMBER}\+? ?"
    r"(?:mins?|minutes|hours?|hrs?|days?|weeks?|months?)"
)
_THING = (
    r"(?:refund|money|parcel|order|delivery|package|item|engineer|technician|callback|"
    r"call back|replacement|reply|response|answer|card|letter|email|confirmation|credit|"
    r"discount|voucher|compensation)"
)
_DID_NOT_HAPPEN = (
    r"(?:never (?:came|arrived|turned up|showed|happened|appeared|got|received|materiali[sz]ed)"
    r"|never (?:comes?|arrives?|turns? up|shows? up|gets? back|calls? back|does)"
    r"|never (?:sent|delivered|refunded|replied|responded|rang|called|answered|fixed|bothered"
    r"|heard|got back|came back)"
    r"|(?:has|have|had)n'?t (?:arrived|come|turned up|appeared)|not (?:arrived|received|turned up)"
    r"|did(?:n'?t| not) (?:arrive|come|turn up|show|appear|happen))"
)


def _rule(
    pattern: str, valence: float, kind: _Kind = _Kind.PLAIN, *, opens_clause: bool = False
) -> _PhraseRule:
    """``opens_clause``: the phrase counts only at the start of a clause ("It isn't.")."""
    compiled = re.compile(r"\W*" + pattern if opens_clause else pattern)
    return _PhraseRule(compiled, valence, kind, opens_clause)


#: Phrases of service, matched on the lower-cased text; valence in compound units (-1..1).
PHRASE_RULES: Sequence[_PhraseRule] = (
    # outcomes that did not happen
    _rule(rf"\b{_THING}\b[^.!?]{{0,40}}\b{_DID_NOT_HAPPEN}", -0.8, _Kind.OUTCOME),
    _rule(rf"\b{_DID_NOT_HAPPEN}", -0.5, _Kind.OUTCOME),
    _rule(
        r"\b(?:not|isn'?t|wasn'?t|never|hasn'?t been|haven'?t been|still not|nothing)"
        r" (?:has been |have been |had been |was |were |is |got |been |actually |yet )?"
        r"(?:resolved|fixed|sorted|solved|done)\b"
        r"|\bnothing (?:was |has been |is being |got )done\b",
        -0.7,
        _Kind.OUTCOME,
    ),
    _rule(
        r"\b(?:couldn'?t|could not|can'?t|cannot|unable to|didn'?t|did not|won'?t|will not)"
        r" (?:actually |even )?(?:fix|resolve|sort|solve|help|answer|explain|tell|find|trace)\b",
        -0.6,
        _Kind.OUTCOME,
    ),
    _rule(
        r"\bno (?:refund|reply|response|answer|callback|call back|update|explanation|resolution|"
        r"apology|warning|notice|idea|one|help|signal|internet|service|way|authority|clue|use|"
        r"heating|heat|hot water|power|electricity|water|gas|wifi|sign of)\b",
        -0.5,
        _Kind.OUTCOME,
    ),
    _rule(r"\b(?:nobody|no-one|no one)\b", -0.4, _Kind.OUTCOME),
    _rule(
        r"\b(?:still|yet to|i'?ve yet)\b[^.!?]{0,20}\b(?:no|not|waiting|being charged|charged|"
        r"dealing|fighting|arguing|trying|chasing|paying|on hold|nothing|billed|being billed|"
        r"can'?t|cannot|don'?t|haven'?t|hasn'?t|isn'?t|doesn'?t|won'?t|have no|broken|down)\b",
        -0.6,
        _Kind.OUTCOME,
    ),
    _rule(r"\bstill waiting\b", -0.3, _Kind.OUTCOME),
    _rule(
        r"\b(?:can'?t|cannot|couldn'?t|unable to|won'?t let me|no way to)"
        r" (?:log ?in|sign in|access|get through|reach|get hold|pay|use|cancel|speak|talk)\b",
        -0.6,
        _Kind.OUTCOME,
    ),
    _rule(
        r"\b(?:doesn'?t|does not|don'?t|do not|isn'?t|is not|not|won'?t|wouldn'?t|never)"
        r" (?:work|working|accept|load|connect)",
        -0.5,
        _Kind.OUTCOME,
    ),
    _rule(
        r"\b(?:charged|billed|taken|debited|paid) (?:twice|double|for (?:a|an|something|nothing))",
        -0.6,
    ),
    _rule(r"\bwaste of (?:time|money)\b|\bwasted my\b", -0.7, _Kind.OUTCOME),
    # waiting
    _rule(
        rf"\b(?:on hold|waited|waiting|wait(?:ed)? in|queue[ds]?|took|taken|takes|been)"
        rf" (?:for |in )?{_SPAN_OF_TIME}",
        -0.45,
    ),
    _rule(rf"\b(?:waiting|waited|been)\b[^.!?]{{0,40}}\bfor {_SPAN_OF_TIME}", -0.45),
    _rule(r"\btrying to (?:reach|contact|get hold|get through|speak|talk)\b", -0.5),
    _rule(r"\b(?:hung up|cut off|line went dead|cut me off)\b", -0.6, _Kind.OUTCOME),
    _rule(r"\bwithout (?:any |a )?(?:warning|notice|explanation|apology)\b", -0.5),
    _rule(
        r"(?<!no )(?<!no waiting )\b(?:on hold|kept waiting|hold time|waiting time|wait time)\b",
        -0.3,
    ),
    _rule(
        rf"\b(?:queue|wait|hold|waiting time|wait time|hold time)s? (?:was|is|of) {_SPAN_OF_TIME}"
        rf"|\b(?:took|taken|takes|taking) (?:them|you|him|her|us|me) {_SPAN_OF_TIME}",
        -0.45,
    ),
    _rule(rf"\b{_SPAN_OF_TIME} (?:later|ago|on hold|without|for a reply)\b", -0.35),
    _rule(r"\b(?:took|takes|taking) (?:forever|ages|so long|too long)\b", -0.5),
    # repeat contact
    _rule(
        r"\b(?:second|third|fourth|fifth|sixth|\d+(?:st|nd|rd|th)) (?:time|call|email|attempt)\b",
        -0.45,
    ),
    _rule(
        r"\b(?:two|three|four|five|six|\d+|several|multiple|many|countless) "
        r"(?:times|calls|emails|attempts|chats|different)\b",
        -0.4,
    ),
    _rule(
        r"\bagain\b(?<!use again)(?<!shop again)(?<!buy again)(?<!order again)"
        r"(?<!fly again)(?<!book again)(?<!come again)(?<!back again)",
        -0.35,
    ),
    _rule(
        r"\b(?:every single time|every time i|every month|same (?:problem|issue|fault))\b", -0.35
    ),
    _rule(r"\b(?:have|had|having) to (?:\w+ ){0,4}(?:again|from scratch|start over)\b", -0.4),
    _rule(r"\bkeeps? (?:on )?\w+ing\b", -0.35),
    _rule(r"\bmore for less\b", -0.6),
    _rule(r"\b(?:gave|give|giving) up\b|\brip(?:ped)?[- ]off\b", -0.5, _Kind.OUTCOME),
    _rule(
        r"\b(?:didn'?t|don'?t|doesn'?t|did not|does not|do not|no one|nobody)"
        r" (?:seem to |even |really |actually )?(?:know|understand|care|listen|bother)\b",
        -0.6,
    ),
    _rule(r"\b(?:chase|chased|chasing|follow(?:ed)? up|followed-up)\b", -0.2),
    # transfers
    _rule(
        r"\b(?:transferred|passed (?:on|around|from|between)|put through to the wrong|"
        r"from (?:department|person) to (?:department|person)|bounced around|different "
        r"(?:people|person|answers?|story|stories|departments?))\b",
        -0.45,
    ),
    _rule(r"\b(?:explain|repeat)(?:ed|ing)? (?:my|the) (?:problem|issue|story)", -0.3),
    # broken promises
    _rule(
        r"\b(?:promised|told|assured|said|meant to|supposed to|guaranteed)\b[^.!?]{0,50}"
        r"\b(?:never|didn'?t|did not|isn'?t|wasn'?t|hasn'?t|it has been|that was|still|but)\b",
        -0.5,
        _Kind.OUTCOME,
    ),
    _rule(r"\b(?:was|were) (?:meant|supposed) to\b", -0.35),
    _rule(
        r"\b(?:told|said|assured|promised|claimed|marked|supposedly|apparently)\b[^.!?]{0,30}"
        r"\b(?:fixed|resolved|sorted|solved|done|delivered|refunded|closed|on (?:its|the) way)",
        -0.2,
        _Kind.REPORTED,
    ),
    _rule(
        r"(?:it|they|he|she|that|this|nothing|which) (?:still )?(?:isn'?t|"
        r"wasn'?t|hasn'?t|didn'?t|doesn'?t|has not|did not|is not|was not|never did|won'?t)"
        r"\W*(?:$|[.!?;])",
        -0.6,
        _Kind.OUTCOME,
        opens_clause=True,
    ),
    _rule(r"\b(?:lied|misled|mis-sold|missold)\b", -0.5),
    # leaving
    _rule(
        r"\b(?:wouldn'?t|would not|won'?t|will not|never|can'?t) (?:ever )?recommend\b"
        r"(?! (?:\w+ )?enough| highly)|"
        r"\b(?:business|custom) elsewhere\b|\bwent elsewhere\b|\bleaving you\b",
        -0.7,
        _Kind.OUTCOME,
    ),
    _rule(r"\bworst\b", -0.4),
    # sarcasm
    _rule(r"\b(?:how you treat|(?:way|how) to treat)\b", -0.6, _Kind.SARCASM),
    _rule(
        r"\b(?:thanks?|thank you|cheers|great job|good job|well done|nice one|nice work|"
        r"appreciate)(?: you| a lot| so much| again)?(?: for| on)? (?:\w+ ){0,2}?(?:charging|"
        r"losing|ignoring|wasting|cancell?ing|breaking|overcharging|keeping me waiting|"
        r"hanging up|cutting|leaving (?:me|it|my)|ruining|messing|screwing|sending (?:the wrong|"
        r"me the wrong)|making (?:this|it|things|me) (?:so |even |more )?(?:difficult|hard|"
        r"complicated|painful|awkward|stressful|wait))"
        r"|\b(?:appreciate|love|loving|enjoy|like) being\b|\bnice to see\b[^.!?]{0,40}\bagain\b"
        r"|\b(?:counts?|means?|worth) (?:for )?(?:nothing|zilch)\b"
        r"|(?<=, )not\W*$",
        -0.7,
        _Kind.SARCASM,
    ),
    _rule(
        r"\b(?:can'?t|cannot|couldn'?t) believe how (?:bad|poor|awful|terrible|slow|rude|long|"
        r"useless|expensive|hard|difficult)\b",
        -0.9,
        _Kind.SARCASM,
    ),
    _rule(r"\bthanks? (?:you )?for nothing\b", -0.9, _Kind.SARCASM),
    _rule(
        r"\b(?:oh|yeah|wow|just) (?:great|brilliant|wonderful|lovely|perfect|fantastic|super)\b",
        -0.5,
        _Kind.SARCASM,
    ),
    _rule(
        r"(?:great|brilliant|wonderful|lovely|perfect|fantastic|fab|nice|sure|oh good)\W+"
        r"(?:another|again|now|more|yet)\b",
        -0.5,
        _Kind.SARCASM,
        opens_clause=True,
    ),
    _rule(
        r"\b(?:great|brilliant|wonderful|fantastic|perfect)[,.!]* another\b", -0.5, _Kind.SARCASM
    ),
    _rule(
        r"\b(?:love|loving|enjoy|enjoying) (?:waiting|being|paying|spending|getting|having to|"
        r"listening|hold)\b",
        -0.6,
        _Kind.SARCASM,
    ),
    _rule(r"\bnice (?:of|that) (?:someone|somebody|anyone|you|they|them)\b", -0.6, _Kind.SARCASM),
    _rule(r"\bnice try\b", -0.6, _Kind.SARCASM),
    _rule(
        r"\bgood luck (?:getting|trying to|reaching|finding|speaking to|talking to)\b",
        -0.6,
        _Kind.SARCASM,
    ),
    _rule(
        r"\b(?:so[- ]called|clearly not|anything but|what customer service|apparently|"
        r"i suppose|as if|yeah right)\b",
        -0.4,
        _Kind.SARCASM,
    ),
    _rule(r"\b(?:sure|of course),? i (?:love|enjoy|like)\b", -0.6, _Kind.SARCASM),
    # complaint idioms: fed up, hidden fees, no-shows, things done to the customer's order
    _rule(
        r"\b(?:fed up|sick (?:and tired )?of|had enough|at my wits'? end|beyond a joke|"
        r"last straw|final straw|never again|avoid (?:at all costs|like the plague|this|them)|"
        r"sort (?:it|this|yourselves) out|want my money back|(?:zero|0|no|one|1) stars?)\b"
        r"|"
        r"\b(?:(?<!no )hidden (?:fees?|charges?|costs?)|radio silence|no[- ]show|"
        r"(?:run|ran|running)[- ]?around|fobbed off|passed the buck|brushed off|left in the rain|"
        r"(?:thrown|threw|chucked|dumped)\b[^.!?]{0,20}\b(?:over|in|on|at)|"
        r"not as (?:described|advertised|pictured)|not what i (?:ordered|paid for|asked for)|"
        r"not fit for purpose|not up to (?:scratch|standard)|(?:below|sub)[- ]?par|"
        r"lack of (?:communication|care|help|support|response|updates?|information)|"
        r"no (?:communication|customer service|accountability|updates?|follow[- ]up))\b"
        r"|"
        r"\b(?:still nothing|and counting|(?:logs?|logged|kicks?|kicked|throws?) (?:me|us) out|"
        r"(?:round|around) in circles|let (?:me|us) down|let down|(?:i'?m|i am) done with|"
        r"(?:take|taking) (?:this|it|my complaint|the matter) further|legal action|"
        r"trading standards|small claims|formal complaint|chargeback|"
        r"(?:didn'?t|did not|hadn'?t|had no|has no|have no|not a|haven'?t got a) (?:have a )?clue|"
        r"how many more times|how much longer|is it too much to ask|how hard can it be|"
        r"(?:couldn'?t|could not|can'?t|cannot) (?:be bothered|care less)|"
        r"is this (?:a joke|some kind of joke|for real)|are you (?:serious|kidding|joking|having"
        r" a laugh)|you'?re (?:having a laugh|joking|kidding)|what(?: i|')s going on|"
        r"who runs (?:this|your)|what(?: i|')s the point|is anyone (?:there|listening|reading)|"
        r"does anyone (?:actually |even |ever )?(?:care|read|listen|know what)|"
        r"talked down to|(?:reading|read|reads) (?:from|off) (?:a|the|their) script|"
        r"(?:waiting|waited|hold|kept|queued|queuing|line|took|taking)\b[^.!?]{0,20}\bfor ages|"
        r"(?:waiting|waited) since|"
        r"(?:i was|we were|i'?ve been|i have been|i am|i'?m) (?:in|home|at home|in all day)"
        r" all day|more interested in|less than (?:what )?(?:i|we) paid|more than (?:i was |"
        r"we were )?(?:quoted|told|agreed))\b"
        r"|"
        r"\b(?:not once|not (?:a single|one) (?:apology|call|email|update|reply|response|word)|"
        r"(?:and|but) nothing\b|nothing (?:since|is here|has (?:arrived|come|happened|changed))|"
        r"(?:hasn'?t|has not|haven'?t|have not|not) (?:been )?updated|"
        r"(?:off|down|out|broken|cut off) since|without (?:any )?(?:water|power|heating|heat|"
        r"hot water|internet|broadband|gas|electricity|signal|a phone|phone|wifi)|"
        r"without the (?:right |correct )?(?:part|parts|tools)|"
        r"not paying|refuse to pay|won'?t be paying|out of date|"
        r"(?:arrived|was|were|is|came) (?:stone |completely )?cold|"
        r"(?:signal|connection|internet|wifi|broadband|line|call)s? (?:keeps )?(?:drops?|"
        r"dropping|cuts? out|cutting out|goes down|going down)|"
        r"(?:take|took|taken|taking) (?:another |a )?(?:day|morning|afternoon) off|"
        r"(?:put|putting|puts) (?:the |your |my )?(?:prices?|bills?|rates?|fees?) up|"
        r"(?:app|site|website|system|network|server|line|internet|broadband|wifi|phone)s? "
        r"(?:is|are|was|were|went|has been|have been|keeps going) (?:down|dead|offline)|"
        r"(?:price|bill|fee|rate)s? (?:rise|rises|increase|increases|hike|hikes|went up|"
        r"gone up))\b",
        -0.6,
        _Kind.OUTCOME,
    ),
    _rule(
        r"(?<!i )(?<!we )\b(?:cancell?ed|lost|damaged|broke|lost|delayed|rejected|refused)"
        r" (?:my|our) (?:flight|train|order|booking|appointment|parcel|package|delivery|"
        r"claim|refund|reservation|luggage|bag|suitcase|item)\b"
        r"|"
        r"\b(?:didn'?t|did not|don'?t|doesn'?t|wouldn'?t|couldn'?t|won'?t|not|never) even\b"
        r"(?! (?:a |an )?(?:problem|issue|bother|hassle))|"
        r"\bleft without (?:fixing|doing|finishing|repairing|a word|an explanation|saying)|"
        r"\bwithout (?:fixing|resolving|sorting|solving|repairing) (?:anything|it|the)",
        -0.5,
        _Kind.OUTCOME,
    ),
    _rule(
        r"\b(?:arrived|came|delivered|turned up|was|were|is)\b[^.!?]{0,25}"
        r"\b(?:broken|damaged|smashed|cracked|faulty|missing|wrong|late|dented|leaking)\b",
        -0.3,
        _Kind.OUTCOME,
    ),
    _rule(
        rf"\b{_SPAN_OF_TIME} (?:now|and counting)\b|\b(?:it'?s|it has|that'?s) (?:now )?been"
        rf" {_SPAN_OF_TIME}|\b(?:is|was) (?:double|twice|triple)\b",
        -0.45,
    ),
    _rule(
        r"\btreated (?:like (?:this|dirt|rubbish|a criminal|an idiot|a number|that)|so badly)",
        -0.8,
        _Kind.SARCASM,
    ),
    # praise turned to complaint: "could have been better", "not the best", "left a lot to be
    # desired" (the clause's praise words are read as complaint, as for sarcasm)
    _rule(
        r"\b(?:could|should|might)(?:'ve| have) been (?:a lot |much |far |way )?(?:better|"
        r"quicker|faster|clearer|easier|sooner|handled better|more helpful)|"
        r"\bnot (?:the|exactly the|really the) (?:best|greatest|nicest|easiest|quickest)\b|"
        r"\bnot (?:exactly|particularly|very|overly|that|too|the most|really|at all|all that)"
        r" (?:helpful|great|good|friendly|clear|quick|easy|impressed|happy|pleased|"
        r"professional|useful|efficient|polite|satisfied|smooth)\b|"
        r"\b(?:leaves?|left) (?:a lot|much|plenty|something) to be desired\b|"
        r"\broom for improvement\b|\bneeds? (?:serious |major |a lot of )?improvement\b",
        -0.5,
        _Kind.SARCASM,
    ),
    # complaints denied: "nothing was too much trouble", "not a problem", "no trouble at all"
    _rule(
        r"\b(?:nothing (?:was|is) too much (?:trouble|bother|effort)|no trouble at all|"
        r"not (?:a|one) (?:single )?(?:problem|issue|complaint)|not bad at all|"
        r"(?:never|haven'?t|have not|hasn'?t|didn'?t) (?:had|have|ever had) (?:a |any )?"
        r"(?:problems?|issues?|complaints?|trouble)|"
        r"without (?:any )?(?:problems?|issues?|hassle|fuss|trouble|a hitch|delay|questions?)|"
        r"no wait(?:ing)?(?: on hold| time)?|didn'?t have to wait|(?:got|put|went) straight"
        r" through|no queue)",
        0.9,
    ),
    # praise idioms
    _rule(
        r"\b(?:kept|keeps|keeping) (?:me|us) (?:updated|informed|in the loop|posted)|"
        r"\b(?:kept|keeps) (?:their|his|her|its|your) (?:promise|word)|\bhats off\b|"
        r"\b(?:came|come|went) through (?:quickly|fast|within|in|straight|the same|next)|"
        r"\bin (?:safe|good) hands\b|\b(?:a )?life ?saver\b|\bfirst[- ]class\b|"
        r"\bquick and (?:easy|simple|painless)\b|\ba (?:pleasure|joy) to\b|"
        r"\b(?:nothing|no request) (?:was |is )?too (?:much|small)|"
        r"\b(?:sorted|fixed|resolved|solved|dealt with|handled) (?:it |this |everything )?"
        r"(?:out )?(?:quickly|straight away|immediately|right away|on the spot|in one|first)|"
        r"\b(?:arrived|came|delivered|refunded|replied|responded|answered|fixed|sorted|resolved|"
        r"dispatched|here|got back to me|called me back|rang me back)(?: \w+){0,2} (?:next (?:"
        r"morning|day)|the same day|same day|the next day|within (?:the|an|a|\d+|one|two) (?:"
        r"hours?|days?|minutes?))\b|\bexceeded (?:my |our |all )?expectations\b|"
        r"\banswered (?:all|every|each) (?:of )?(?:my|our) (?:questions?|queries)|"
        r"\b(?:got|received|given|gave me|issued) (?:a |me a )?full refund\b|"
        r"\b(?:will|i'?ll|we'?ll) (?:definitely |certainly )?be (?:back|returning)\b|"
        rf"\b(?:done|sorted|fixed|resolved|finished|completed?|arrived|delivered|refunded|"
        rf"replied|back)(?: \w+){{0,2}} (?:in|within) (?:under |less than |about )?{_NUMBER} "
        r"(?:mins?|minutes|hours?|days?)\b|"
        r"\b(?:got|received|had|getting) (?:my|our|the|a) (?:money|refund|deposit) back\b|"
        r"\bgot (?:my|a|the|our) (?:full )?refund\b|"
        r"\b(?:quicker|faster|sooner|better|easier|earlier|cheaper|smoother|simpler) than "
        r"(?:i |we )?(?:expected|thought|anticipated|feared|hoped)",
        0.6,
    ),
    # emoji and emoticons VADER's lexicon misses or reads as neutral
    _rule(
        "[\U0001f621\U0001f92c\U0001f44e\U0001f620\U0001f624\U0001f612\U0001f644"
        "\U0001f629\U0001f62b\U0001f926\U0001f4a9\U0001f61e\U0001f62d\U0001f622]",
        -0.5,
    ),
    _rule(
        "[\U0001f44d\U0001f64f\U0001f44f\U0001f44c\U0001f60a\U0001f642\U0001f600"
        "\U0001f603\U0001f604\U0001f601\U0001f60d\U0001f970\U0001f929\u2764\u2b50"
        "\U0001f31f\U0001f389\U0001f4af\U0001f64c]",
        0.5,
    ),
    # questions and requests
    _rule(
        r"(?:what|when|where|how|which|who|can i|could i|can you|could you|is there|are there|"
        r"is (?:the|my|your|this|it)|are (?:you|the|my)|will (?:i|you|my|the)|do i|did you|"
        r"have you|has (?:my|the)|any (?:news|update)|"
        r"do you|does|is it|i'?d like|i would like|i want to|i need|i wish to|please|checking|"
        r"i'?m (?:checking|enquiring|asking|calling|writing)|i am (?:checking|enquiring|asking|"
        r"calling|writing)|(?:called|phoned|rang|calling|writing) (?:to|about|regarding)|"
        r"(?:i )?(?:called|phoned|rang|emailed|wrote)(?: \w+){0,3} (?:to ask|to check|about|"
        r"regarding|to report)|reporting|(?:i'?m|i am) reporting|just to let you know|fyi)\b",
        0.0,
        _Kind.REQUEST,
        opens_clause=True,
    ),
    _rule(r"(?!why\b)[^.!?;\n]*\?", 0.0, _Kind.REQUEST, opens_clause=True),
    # praise idioms the lexicon misreads or misses
    _rule(
        r"\b(?:can'?t|cannot|couldn'?t) (?:fault|praise|thank|recommend) (?:it|them|you|the|"
        r"this|enough|highly|\w+ enough)|\bcouldn'?t (?:be happier|ask for more|have been)\b|"
        r"\bwhat more could (?:you|i|anyone) (?:want|ask)",
        0.9,
    ),
    _rule(
        r"\bno (?:issues?|problems?|complaints?|hassle|fuss|questions asked|quibbles?|hidden|"
        r"problem at all)\b|\bnothing to (?:add|complain)",
        0.6,
    ),
    _rule(
        r"\b(?:above and beyond|the extra mile|out of (?:their|his|her|your) way|"
        r"first (?:time|call|contact)|on time|spot on|top notch|five[- ]stars?|5[- ]stars?|10/10|"
        r"in no time|within minutes|in minutes|exactly as described|as always|keep it up|"
        r"well done|good job|no extra cost|put me at ease|there and then)\b",
        0.5,
    ),
    _rule(
        r"\b(?:would|will|i'?d|i'?ll) (?:definitely |happily |certainly )?(?:recommend|use|shop|"
        r"buy|fly|order|come back)(?: \w+)? ?(?:again|you)?\b",
        0.45,
    ),
    _rule(
        r"\b(?:problem|issue|fault)s? (?:was |is |got )?(?:gone|solved|fixed|resolved|sorted)\b|"
        r"\b(?:resolved|fixed|solved|sorted)\b[^.!?]{0,20}\b(?:problem|issue|fault)s?\b",
        0.6,
    ),
    _rule(r"\bmakes? up for\b", 0.5),
    _rule(r"\bhassle[- ]free\b", 0.6),
    _rule(r"\bknow(?:s)? (?:their|his|her|what they'?re|the) (?:stuff|job|products?|talking)", 0.5),
    _rule(rf"\b(?:only|just) (?:took|takes|taking|needed) (?:about )?{_SPAN_OF_TIME}", 0.5),
    _rule(r"\b(?:arrived|came|delivered|turned up|got here|here)(?: \w+){0,2} early\b", 0.4),
    _rule(r"\b(?:did the job|does the job|works perfectly|like new|as expected)\b", 0.5),
)

_WORD_START_RULES = [i for i, rule in enumerate(PHRASE_RULES) if not rule.opens_clause]
_CLAUSE_OPENING_RULES = [i for i, rule in enumerate(PHRASE_RULES) if rule.opens_clause]


@cache
def _alternatives(first: int) -> re.Pattern[str]:
    """The word-start rules from the ``first``-th on as one pattern, each in a group ``r<n>``
    (compiled when first needed: compiling all of them takes a quarter of a second)."""
    return re.compile(
        r"(?<![a-z0-9'])(?=[\w\u2600-\u2bff\U0001f000-\U0001faff])(?:"
        + "|".join(
            f"(?=(?P<r{n}>{PHRASE_RULES[i].pattern.pattern}))"
            for n, i in enumerate(_WORD_START_RULES)
            if n >= first
        )
        + ")"
    )


#: An exclamation of praise opening a clause, ironic when what follows it complains.
_IRONIC_OPENER = re.compile(
    r"\W*(?:oh |just )?(?:great|brilliant|fantastic|excellent|lovely|perfect|wonderful|super|"
    r"marvellous|amazing|awesome|thanks a lot|thanks a bunch|thanks|cheers|nice one|well done)"
    r"\W*[,\-\u2013\u2014]\s*"
)
_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;\n]*|[.!?;\n]+")
#: A marker that shifts the weight to what follows it, and one that introduces a concession.
_CONTRAST = re.compile(r"\b(but|however|yet(?! again| to)|except|although|though|whereas)\b")
_SHIFTING = frozenset({"but", "however", "yet", "except"})
_AFTER_CONTRAST_WEIGHT = 3.0
_OUTCOME_WEIGHT = 3.0


class _PolarityScorer(Protocol):
    def polarity_scores(self, text: str) -> Mapping[str, float]: ...


class ServiceSentiment:
    """The sentiment model: build it once (it copies VADER's lexicon) and reuse it."""

    def __init__(self) -> None:
        analyzer = SentimentIntensityAnalyzer()
        analyzer.lexicon.update(SERVICE_LEXICON)
        self._vader: _PolarityScorer = analyzer

    def analyze(self, text: str) -> tuple[Sentiment, tuple[Clause, ...]]:
        """The sentiment of the whole text and of each clause (for aspect sentiment)."""
        lowered = text.lower()
        segments = [s for s in _segments(lowered) if lowered[s[0] : s[1]].strip()]
        found: list[set[int]] = [set() for _ in segments]
        for position, index in _phrases_at_word_starts(lowered):
            found[_holding(segments, position)].add(index)
        for place, (start, end, _) in enumerate(segments):
            for index in _CLAUSE_OPENING_RULES:
                if PHRASE_RULES[index].pattern.match(lowered, start, end):
                    found[place].add(index)
        clauses = tuple(
            _score_clause(
                self._vader_of(text, lowered, start, end, [PHRASE_RULES[i] for i in rules]),
                [PHRASE_RULES[index] for index in sorted(rules)],
                start,
                end,
                weight,
            )
            for (start, end, weight), rules in zip(segments, found, strict=True)
        )
        return _combine(clauses), clauses

    def _vader_of(
        self, text: str, lowered: str, start: int, end: int, rules: Sequence[_PhraseRule]
    ) -> float:
        """VADER's compound for the clause; a clause opened by an exclamation of praise
        ("Fantastic, my card has been declined") is ironic when the rest of it complains."""
        compound = self._vader.polarity_scores(text[start:end])["compound"]
        opener = _IRONIC_OPENER.match(lowered, start, end)
        if opener is None or compound <= 0:
            return compound
        rest = self._vader.polarity_scores(text[opener.end() : end])["compound"]
        if rest < 0 or any(rule.valence < 0 for rule in rules):
            return min(rest, 0.0) - 0.3
        return compound


def _phrases_at_word_starts(lowered: str) -> Iterator[tuple[int, int]]:
    """(position, rule index) for every rule matching at a word start.

    One scan of the text with all rules as alternatives finds the positions where some rule
    matches (four times faster than a scan per rule); at such a position only the rules after
    the one found can still match, and they are tried from there."""
    for found in _alternatives(0).finditer(lowered):
        position = found.start()
        index = _rule_index(found)
        while index is not None:
            yield position, _WORD_START_RULES[index]
            after = _alternatives(index + 1).match(lowered, position)
            index = None if after is None else _rule_index(after)


def _rule_index(match: re.Match[str]) -> int | None:
    return None if match.lastgroup is None else int(match.lastgroup[1:])


def _segments(lowered: str) -> Iterable[tuple[int, int, float]]:
    for sentence in _SENTENCE.finditer(lowered):
        start, weight = sentence.start(), 1.0
        for marker in _CONTRAST.finditer(lowered, sentence.start(), sentence.end()):
            yield start, marker.start(), weight
            start = marker.start()
            weight = _AFTER_CONTRAST_WEIGHT if marker.group(1) in _SHIFTING else 1.0
        yield start, sentence.end(), weight


def _holding(segments: Sequence[tuple[int, int, float]], position: int) -> int:
    """The index of the segment where a phrase starting at ``position`` begins."""
    for index, (_, end, _) in enumerate(segments):
        if position < end:
            return index
    return len(segments) - 1


def _score_clause(
    vader: float, rules: Sequence[_PhraseRule], start: int, end: int, weight: float
) -> Clause:
    kinds = {rule.kind for rule in rules}
    if vader > 0 and _Kind.SARCASM in kinds:
        vader = -vader
    elif vader > 0 and kinds & {_Kind.OUTCOME, _Kind.REPORTED}:
        vader /= 4
    elif vader > 0 and _Kind.REQUEST in kinds:
        vader *= 0.15
    elif vader < 0 and _Kind.REQUEST in kinds and _Kind.OUTCOME not in kinds:
        # "reporting a broken street light" names a problem without complaining: a request
        # loses its mild negatives and keeps the strong ones ("writing to complain about
        # the appalling service")
        vader = min(0.0, vader + 0.35)
    score = max(-1.0, min(1.0, vader + sum(rule.valence for rule in rules)))
    if _Kind.OUTCOME in kinds and score < 0:
        weight *= _OUTCOME_WEIGHT
    return Clause(start=start, end=end, score=score, weight=weight)


def _combine(clauses: Sequence[Clause]) -> Sentiment:
    """A weighted mean in which strong clauses count more than flat ones."""
    total = weighted = agreeing = opposing = 0.0
    for clause in clauses:
        say = clause.weight * (0.25 + abs(clause.score))
        total += say
        weighted += say * clause.score
    score = weighted / total if total else 0.0
    label = label_for(score)
    for clause in clauses:
        if abs(clause.score) < POSITIVE_THRESHOLD:
            continue
        say = clause.weight * abs(clause.score)
        if (clause.score > 0) == (score > 0):
            agreeing += say
        else:
            opposing += say
    agreement = agreeing / (agreeing + opposing) if agreeing + opposing else 1.0
    if label is SentimentLabel.NEUTRAL:
        margin = 1.0 - abs(score) / POSITIVE_THRESHOLD
        confidence = 0.5 + 0.4 * margin if opposing == 0 else 0.4
    else:
        confidence = (0.5 + 0.5 * min(1.0, abs(score) / 0.6)) * (0.5 + 0.5 * agreement)
    return Sentiment(label=label, score=round(score, 4), confidence=round(confidence, 3))


def label_for(score: float) -> SentimentLabel:
    if score >= POSITIVE_THRESHOLD:
        return SentimentLabel.POSITIVE
    if score <= NEGATIVE_THRESHOLD:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


def sentiment_toward(clauses: Sequence[Clause], spans: Iterable[tuple[int, int]]) -> Sentiment:
    """The sentiment of the clauses that hold any of ``spans`` (where a topic was found)."""
    chosen = [c for c in clauses if any(c.start <= s < c.end for s, _ in spans)]
    return _combine(chosen)
