"""Profile values from many phrasings in several languages (pure pattern extraction)."""

from __future__ import annotations

import pytest

from memory.extract import extract

CASES = [
    # -- address (en, pt, de, fr, es)
    (
        "Moved within Porto to Rua de Cedofeita 52, 4050-174 Porto.",
        {
            "street-address": "Rua de Cedofeita 52",
            "postal-code": "4050-174",
            "address-level2": "Porto",
        },
    ),
    (
        "We moved! Our address is Rua das Flores 45, 1200-195 Lisboa, Portugal.",
        {
            "street-address": "Rua das Flores 45",
            "postal-code": "1200-195",
            "address-level2": "Lisboa",
        },
    ),
    (
        "I live at 123 Main Street, Springfield, IL 62704.",
        {
            "street-address": "123 Main Street",
            "postal-code": "62704",
            "address-level2": "Springfield",
        },
    ),
    (
        "My new address is 221B Baker Street, London NW1 6XE.",
        {
            "street-address": "221B Baker Street",
            "postal-code": "NW1 6XE",
            "address-level2": "London",
        },
    ),
    (
        "Just moved to 48 Oak Avenue, Portland, OR 97201!",
        {"street-address": "48 Oak Avenue", "postal-code": "97201", "address-level2": "Portland"},
    ),
    (
        "I'm now living at Kastanienallee 12, 10435 Berlin.",
        {"street-address": "Kastanienallee 12", "postal-code": "10435", "address-level2": "Berlin"},
    ),
    (
        "A minha nova morada é Rua das Flores 12, 1200-195 Lisboa.",
        {
            "street-address": "Rua das Flores 12",
            "postal-code": "1200-195",
            "address-level2": "Lisboa",
        },
    ),
    (
        "Mudei-me para Avenida da Boavista 1200, 4100-130 Porto.",
        {
            "street-address": "Avenida da Boavista 1200",
            "postal-code": "4100-130",
            "address-level2": "Porto",
        },
    ),
    (
        "Wir sind umgezogen: Bahrenfelder Straße 80, 22765 Hamburg.",
        {
            "street-address": "Bahrenfelder Straße 80",
            "postal-code": "22765",
            "address-level2": "Hamburg",
        },
    ),
    (
        "Meine neue Adresse ist Lindenstraße 5, 50674 Köln.",
        {"street-address": "Lindenstraße 5", "postal-code": "50674", "address-level2": "Köln"},
    ),
    (
        "Ich wohne jetzt in der Hauptstraße 7, 80331 München.",
        {"street-address": "Hauptstraße 7", "postal-code": "80331", "address-level2": "München"},
    ),
    (
        "Nous avons déménagé au 12 rue de Rivoli, 75001 Paris.",
        {"street-address": "12 rue de Rivoli", "postal-code": "75001", "address-level2": "Paris"},
    ),
    (
        "Ma nouvelle adresse : 8 avenue Jean Jaurès, 69007 Lyon.",
        {
            "street-address": "8 avenue Jean Jaurès",
            "postal-code": "69007",
            "address-level2": "Lyon",
        },
    ),
    (
        "Nueva dirección: Calle Mayor 5, 28013 Madrid.",
        {"street-address": "Calle Mayor 5", "postal-code": "28013", "address-level2": "Madrid"},
    ),
    (
        "Me mudé a Carrer de Mallorca 401, 08013 Barcelona.",
        {
            "street-address": "Carrer de Mallorca 401",
            "postal-code": "08013",
            "address-level2": "Barcelona",
        },
    ),
    # -- phone
    ("My new mobile number is +44 7700 900123.", {"tel": "+44 7700 900123"}),
    ("New number: +351 912 345 678", {"tel": "+351 912 345 678"}),
    ("You can reach me at +1 (415) 555-0134 from now on.", {"tel": "+1 (415) 555-0134"}),
    ("Text me on 0612 345 678, that's my new one.", {"tel": "0612 345 678"}),
    ("Meine neue Handynummer ist 0151 2345 6789.", {"tel": "0151 2345 6789"}),
    ("O meu novo número é 912 345 678.", {"tel": "912 345 678"}),
    ("Mi nuevo teléfono es +34 612 345 678.", {"tel": "+34 612 345 678"}),
    ("Mon nouveau numéro : 06 12 34 56 78", {"tel": "06 12 34 56 78"}),
    # -- email
    ("My email address is ada@example.org.", {"email": "ada@example.org"}),
    ("Email me at jo.silva@mail.example.pt from now on.", {"email": "jo.silva@mail.example.pt"}),
    ("New email: weber-lisboa@example.com", {"email": "weber-lisboa@example.com"}),
    ("Meine neue E-Mail ist k.mueller@example.de.", {"email": "k.mueller@example.de"}),
    ("O meu email novo é ana.costa@example.pt", {"email": "ana.costa@example.pt"}),
    ("Mi correo es lucia.g@example.es", {"email": "lucia.g@example.es"}),
    ("Mon adresse e-mail est claire.dupont@example.fr.", {"email": "claire.dupont@example.fr"}),
    # -- birthday
    ("I was born on 10 December 1815 in London.", {"bday": "1815-12-10"}),
    ("My birthday is March 3rd, 1985", {"bday": "1985-03-03"}),
    ("Ich bin am 17. April 1991 in Bremen geboren.", {"bday": "1991-04-17"}),
    ("Geboren am 02.11.1979 in Graz.", {"bday": "1979-11-02"}),
    ("Nasci a 3 de março de 1988 em Braga.", {"bday": "1988-03-03"}),
    ("Nací el 21 de junio de 1990.", {"bday": "1990-06-21"}),
    ("Je suis née le 14 juillet 1992 à Nantes.", {"bday": "1992-07-14"}),
    ("My birthday is on 17 April.", {"bday-day": "17", "bday-month": "4"}),
    # -- employer and job title
    (
        "I work for Acme Corp as a software engineer.",
        {"organization": "Acme Corp", "organization-title": "software engineer"},
    ),
    (
        "I was promoted to staff engineer at Acme Corp.",
        {"organization-title": "staff engineer", "organization": "Acme Corp"},
    ),
    (
        "I work as a nurse at Hospital Santa Maria.",
        {"organization": "Hospital Santa Maria", "organization-title": "nurse"},
    ),
    (
        "I'm now head of data at Atlântico Energia.",
        {"organization": "Atlântico Energia", "organization-title": "head of data"},
    ),
    ("Started a new job at Stripe.", {"organization": "Stripe"}),
    (
        "I joined Spreewerk as a product analyst.",
        {"organization": "Spreewerk", "organization-title": "product analyst"},
    ),
    (
        "Ich arbeite jetzt bei Siemens als Ingenieurin.",
        {"organization": "Siemens", "organization-title": "Ingenieurin"},
    ),
    (
        "Ich arbeite als Lehrer bei Montessori Schule Berlin.",
        {"organization": "Montessori Schule Berlin", "organization-title": "Lehrer"},
    ),
    (
        "Comecei a trabalhar na Farfetch como designer de produto.",
        {"organization": "Farfetch", "organization-title": "designer de produto"},
    ),
    (
        "Trabalho como enfermeira no Hospital de São João.",
        {"organization": "Hospital de São João", "organization-title": "enfermeira"},
    ),
    (
        "Empecé a trabajar en Telefónica como ingeniera de datos.",
        {"organization": "Telefónica", "organization-title": "ingeniera de datos"},
    ),
    (
        "Je travaille chez Airbus comme ingénieur.",
        {"organization": "Airbus", "organization-title": "ingénieur"},
    ),
    (
        "J'ai rejoint Doctolib en tant que développeur.",
        {"organization": "Doctolib", "organization-title": "développeur"},
    ),
    ("Ich wurde zum Teamleiter befördert.", {"organization-title": "Teamleiter"}),
    # -- not the writer's own values
    ("My sister's phone number is 555 123 4567.", {}),
    ("Sofia's email is sofia@example.org.", {}),
    ("Sofia moved to Lisbon last year.", {}),
    ("I'm a big fan of Arsenal.", {}),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_phrasings(text, expected):
    got = {e.key: e.value for e in extract(text)}
    assert {k: got.get(k) for k in expected} == expected
    if not expected:
        assert got == {}


def test_table_is_broad():
    assert len(CASES) >= 40
