"""Knowledge updates: the slot vocabulary (memory/slots.json) across paraphrases and languages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from memory import timeline

SETS = [
    ("residence", "I moved to Lisbon in March."),
    ("residence", "We finally relocated to Utrecht."),
    ("residence", "We now live in a flat near the river."),
    ("residence", "Wir sind nach Leipzig umgezogen."),
    ("residence", "Ich wohne jetzt in Graz."),
    ("residence", "Mudei-me para o Porto em maio."),
    ("residence", "Me mudé a Valencia el año pasado."),
    ("residence", "J'ai déménagé à Lyon."),
    ("employer", "I started working at Nordlicht Logistics."),
    ("employer", "Ich arbeite jetzt bei Siemens."),
    ("employer", "Comecei a trabalhar na Farfetch."),
    ("employer", "Je travaille maintenant chez Airbus."),
    ("manager", "My new manager is Priya."),
    ("manager", "I now report to Tom Becker."),
    ("manager", "Meine neue Chefin heißt Frau Albers."),
    ("manager", "O meu novo chefe é o Rui."),
    ("manager", "Mi nueva jefa es Lucía."),
    ("phone", "My phone number is +49 151 2345 6789."),
    ("phone", "Meine neue Handynummer ist 0151 2345 6789."),
    ("phone", "Mi nuevo teléfono es +34 612 345 678."),
    ("phone", "I changed my phone number again, it is now 07700 900789."),
    ("employer", "I left Northwind Health and joined Quanta Bio as head of data."),
    ("manager", "My manager at Quanta Bio is Helen Marsh."),
    ("email", "My new email is ada@example.org."),
    ("email", "Mon nouvel e-mail est claire@example.fr."),
    ("partner", "My girlfriend is Mara, we met in Porto."),
    ("partner", "We got married last weekend!"),
    ("partner", "A minha namorada é a Inês."),
    ("pet", "We adopted a cat called Pixel."),
    ("pet", "Wir haben einen Hund aus dem Tierheim."),
    ("pet", "Adoptamos una perra llamada Luna."),
    ("instrument", "I started playing the cello this autumn."),
    ("instrument", "Ich spiele jetzt Klavier."),
    ("instrument", "Je joue maintenant du piano."),
    ("diet", "I'm vegan now, since January."),
    ("diet", "Ich bin jetzt Vegetarierin."),
    ("diet", "Sou vegetariana agora."),
    ("job_title", "I was promoted to team lead."),
    ("job_title", "Trabajo ahora como enfermera."),
]


@pytest.mark.parametrize("slot, text", SETS)
def test_statements_set_their_slot(slot, text):
    assert slot in timeline.detect_topics(text)


@pytest.mark.parametrize(
    "text, slot",
    [
        ("I switched to oat milk.", "open_milk"),
        ("I no longer smoke.", "open_smoke"),
        ("My new bike is a green gravel bike.", "open_bike"),
        ("I drive a Tesla instead.", "open_tesla"),
        ("Ya no fumo.", "open_fumo"),
    ],
)
def test_open_slots(text, slot):
    assert timeline.detect_topics(text) == [slot]


def test_unrelated_text_sets_no_slot():
    for text in (
        "Sofia moved to Lisbon.",
        "The ferry was late again.",
        "I think the soup is great now",
    ):
        assert timeline.detect_topic(text) is None, text


@pytest.mark.parametrize(
    "query, slot",
    [
        ("Who is my manager now?", "manager"),
        ("Wer ist meine Chefin?", "manager"),
        ("Where do I live now?", "residence"),
        ("Wo wohne ich?", "residence"),
        ("What is my phone number?", "phone"),
        ("What is my job title?", "job_title"),
    ],
)
def test_questions_name_the_slot(query, slot):
    assert timeline.query_topic(query) == slot


def test_vocabulary_is_data_with_three_languages_per_slot():
    vocab = json.loads(timeline.SLOTS_FILE.read_text(encoding="utf-8"))
    for name, spec in vocab["slots"].items():
        assert len(spec["set"]) >= 3, name


def _at(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=UTC)


def test_new_manager_supersedes_old_and_now_prefers_newest(store):
    old, _ = store.remember("My manager is Henrik Olsen, he runs the data team.", at=_at(2021, 2))
    store.remember("The canteen serves bacalhau on Fridays now.", at=_at(2023, 1))
    new, _ = store.remember(
        "New manager since the reorg: I now report to Priya Raman.", at=_at(2023, 6)
    )
    assert store.get(old.id).superseded_by == new.id
    hits = [h.id for h in store.search("Who is my manager now?", k=3)]
    assert hits[0] == new.id
    before = [h.id for h in store.search("Who was my manager before the reorg?", k=5)]
    assert old.id in before


def test_now_does_not_dominate_keywords(store):
    store.remember("The bakery is now open on Sundays.", at=_at(2024, 1))
    store.remember("Now that spring is here, the garden needs work.", at=_at(2024, 3))
    store.remember("Right now I'm reading a novel about whales.", at=_at(2024, 4))
    home, _ = store.remember("We moved into a flat on Rua das Flores in Lisbon.", at=_at(2023, 9))
    assert store.search("Where do I live now?", k=1)[0].id == home.id


def test_time_constraints_boost_event_time(store):
    old, _ = store.remember("Worked long shifts at the harbour warehouse.", at=_at(2021, 3))
    store.remember("We moved to Porto, a flat near the river.", at=_at(2022, 6))
    new, _ = store.remember("Worked from the new office at the harbour all week.", at=_at(2023, 5))
    assert store.search("Where did I work before I moved?", k=1)[0].id == old.id
    assert store.search("What did I work on in May 2023 at the harbour?", k=1)[0].id == new.id
