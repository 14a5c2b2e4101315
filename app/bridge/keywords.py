"""Whole-token multilingual keyword tables for field heuristics (en, de, pt, es, fr).

Matching is on whole tokens after splitting camelCase/snake_case/kebab-case and folding
accents, never on substrings: Bitwarden's old substring match filled "Tell us about
yourself" with a phone number because "tel" occurs inside "Tell". Phrases are token tuples;
a longer phrase beats a shorter one ("company name" is organization, not name).
Chromium's autofill regexes (BSD) were the reference for the vocabulary.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_NON_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=4096)
def tokens(text: str) -> tuple[str, ...]:
    """Split a label/name/id into lowercase ASCII-folded whole tokens."""
    if not text:
        return ()
    text = text.replace("ß", "ss").replace("ẞ", "SS")
    text = _CAMEL.sub(" ", text)
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return tuple(t for t in _NON_WORD.split(folded) if t)


class PhraseSet:
    """Token phrases indexed by their first token, so a lookup costs O(tokens), not O(phrases)."""

    def __init__(self, phrases: tuple[tuple[str, ...], ...]) -> None:
        self.phrases = phrases
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in sorted(phrases, key=len, reverse=True):
            self._by_first.setdefault(phrase[0], []).append(phrase)

    def longest(self, toks: tuple[str, ...]) -> int:
        """Length of the longest phrase occurring as a contiguous token run (0 = none)."""
        best = 0
        for i, tok in enumerate(toks):
            for phrase in self._by_first.get(tok, ()):
                k = len(phrase)
                if k <= best:
                    break  # sorted longest first
                if toks[i:i + k] == phrase:
                    best = k
                    break
        return best

    def starts(self, toks: tuple[str, ...]) -> bool:
        return bool(toks) and any(toks[:len(p)] == p for p in self._by_first.get(toks[0], ()))


def _p(*phrases: str) -> PhraseSet:
    return PhraseSet(tuple(tuple(p.split()) for p in phrases))


# kind -> phrases (already folded to ASCII, lowercase, space separated tokens)
KIND_PHRASES: dict[str, PhraseSet] = {
    "given-name": _p(
        "first name", "given name", "forename", "firstname", "fname", "first", "givenname",
        "vorname", "rufname", "primeiro nome", "nome proprio", "nombre", "nombre de pila",
        "primer nombre", "prenom", "prenoms",
    ),
    "additional-name": _p(
        "middle name", "middlename", "middle", "second name", "zweiter vorname",
        "nome do meio", "segundo nombre", "deuxieme prenom",
    ),
    "family-name": _p(
        "last name", "surname", "family name", "lastname", "lname", "last", "familyname",
        "nachname", "familienname", "zuname", "sobrenome", "apelido", "ultimo nome",
        "apellido", "apellidos", "primer apellido", "nom", "nom de famille",
    ),
    "name": _p(
        "name", "full name", "your name", "fullname", "complete name", "contact name",
        "vollstandiger name", "ihr name", "nome", "nome completo", "seu nome",
        "nombre completo", "nombre y apellidos", "su nombre", "tu nombre", "nom complet",
        "votre nom", "nom et prenom", "prenom et nom",
    ),
    "honorific-prefix": _p("salutation", "anrede", "tratamento", "tratamiento", "civilite"),
    "nickname": _p("nickname", "spitzname", "apelido social", "apodo", "surnom", "pseudo"),
    "email": _p(
        "email", "e mail", "mail", "email address", "e mail address", "emailaddress",
        "mail adresse", "e mail adresse", "correio eletronico", "correo", "correo electronico",
        "courriel", "adresse e mail", "adresse electronique",
    ),
    "tel": _p(
        "phone", "telephone", "tel", "mobile", "cell", "cellphone", "phone number",
        "mobile number", "phonenumber", "telefon", "telefonnummer", "handy", "handynummer",
        "mobilnummer", "rufnummer", "telefone", "celular", "telemovel", "telefono", "movil",
        "numero de telefono", "numero de telefone", "portable", "numero de telephone",
        "mobil",
    ),
    "organization": _p(
        "company", "organization", "organisation", "company name", "employer", "business",
        "firma", "firmenname", "unternehmen", "arbeitgeber", "empresa", "nome da empresa",
        "nombre de la empresa", "entreprise", "societe", "nom de l entreprise", "employeur",
        "org",
    ),
    "organization-title": _p(
        "job title", "jobtitle", "position", "occupation", "profession", "designation",
        "current role", "beruf", "berufsbezeichnung", "stelle", "cargo", "profissao",
        "puesto", "ocupacion", "poste", "fonction", "titre du poste", "metier",
    ),
    "street-address": _p(
        "address", "street address", "street", "streetaddress", "postal address",
        "mailing address", "home address", "adresse", "anschrift", "strasse",
        "strasse und hausnummer", "strasse hausnummer", "endereco", "morada", "rua",
        "direccion", "domicilio", "calle", "rue", "adresse postale", "shipping address",
        "billing address",
    ),
    "address-line1": _p(
        "address line 1", "address 1", "addr 1", "address line1", "street line 1",
        "line 1", "address line one", "adresszeile 1", "endereco linha 1", "linea 1",
        "direccion 1", "ligne 1", "adresse ligne 1", "adresse 1",
    ),
    "address-line2": _p(
        "address line 2", "address 2", "addr 2", "line 2", "street line 2", "apartment",
        "apt", "suite", "unit", "address line two", "adresszeile 2", "adresszusatz",
        "wohnung", "complemento", "apartamento", "piso", "depto", "departamento", "linea 2",
        "direccion 2", "ligne 2", "adresse ligne 2", "complement d adresse", "appartement",
        "batiment", "adresse 2",
    ),
    "address-level2": _p(
        "city", "town", "town city", "locality", "stadt", "ort", "wohnort", "cidade",
        "localidade", "municipio", "ciudad", "localidad", "poblacion", "ville", "commune",
        "city town",
    ),
    "address-level1": _p(
        "state", "province", "region", "county", "state province", "bundesland", "kanton",
        "estado", "uf", "provincia", "comunidad autonoma", "departement", "etat",
        "state region",
    ),
    "postal-code": _p(
        "zip", "zip code", "zipcode", "postal code", "postcode", "post code", "postalcode",
        "plz", "postleitzahl", "cep", "codigo postal", "cp", "code postal",
    ),
    "country": _p(
        "country", "country region", "land", "staat", "pais", "pays", "nation", "country code",
    ),
    "bday": _p(
        "birthday", "date of birth", "birth date", "birthdate", "dob", "geburtsdatum",
        "geburtstag", "data de nascimento", "data nascimento", "fecha de nacimiento",
        "nacimiento", "date de naissance", "naissance",
    ),
    "sex": _p("gender", "sex", "geschlecht", "genero", "sexo", "sexe", "genre"),
    "url": _p(
        "website", "web site", "homepage", "home page", "url", "personal website",
        "webseite", "internetseite", "site", "sitio web", "pagina web", "site web",
        "site internet", "portfolio", "linkedin",
    ),
    "language": _p("language", "sprache", "idioma", "langue", "lingua"),
}

# Exclusion vocabularies (whole tokens/phrases): these fields are never filled.
SENSITIVE_PHRASES: dict[str, PhraseSet] = {
    "password": _p(
        "password", "passwort", "kennwort", "passwd", "pwd", "pass", "senha", "contrasena",
        "clave", "mot de passe", "passphrase", "pin",
    ),
    "payment": _p(
        "card", "card number", "cardnumber", "credit card", "cc", "ccnum", "cc number",
        "cvc", "cvv", "cvv2", "csc", "security code", "expiry", "expiration",
        "expiration date", "exp", "iban", "bic", "swift", "routing number", "account number",
        "kreditkarte", "kartennummer", "karte", "prufnummer", "ablaufdatum",
        "cartao", "numero do cartao", "validade", "tarjeta", "numero de tarjeta",
        "caducidad", "vencimiento", "carte", "numero de carte", "carte bancaire",
        "cryptogramme", "date d expiration", "bankleitzahl", "kontonummer",
    ),
    "one-time-code": _p(
        "otp", "one time code", "one time password", "verification code", "2fa", "mfa",
        "totp", "auth code", "authentication code", "sms code", "bestatigungscode",
        "codigo de verificacao", "codigo de verificacion", "code de verification",
    ),
    "government-id": _p(
        "ssn", "social security", "social security number", "national id",
        "id number", "passport", "passport number", "tax id", "tin", "driver license",
        "drivers license", "driving licence", "licence number", "license number",
        "sozialversicherungsnummer", "steuer id", "steuernummer", "steueridentifikationsnummer",
        "personalausweis", "ausweisnummer", "reisepass", "cpf", "rg", "nif", "nie", "dni",
        "cedula", "pasaporte", "numero de seguridad social", "securite sociale",
        "numero de securite sociale", "passeport", "insee", "nir",
    ),
    "credential": _p(
        "username", "user name", "user id", "userid", "login", "benutzername",
        "nome de usuario", "usuario", "nombre de usuario", "identifiant", "nom d utilisateur",
    ),
    "captcha": _p("captcha", "recaptcha", "security question", "security answer"),
}

HONEYPOT_PHRASES: PhraseSet = _p(
    "honeypot", "honey pot", "hp", "bot", "trap", "leave this field empty",
    "leave this empty", "leave blank", "leave empty", "do not fill", "dont fill",
    "do not fill this", "not be filled", "if you are human", "nicht ausfullen",
    "leer lassen", "deixe em branco", "nao preencha", "dejar en blanco", "no rellenar",
    "laisser vide", "ne pas remplir", "robot", "spam",
)

SEARCH_PHRASES: PhraseSet = _p(
    "search", "q", "query", "suche", "suchen", "pesquisa", "pesquisar", "buscar",
    "busqueda", "recherche", "rechercher",
)

# A label starting with one of these (or ending in "?") is a question -> freetext draft.
QUESTION_STARTS: PhraseSet = _p(
    "tell us", "tell me", "describe", "why", "what", "how", "which", "when", "where", "who",
    "please describe", "please tell", "explain", "share", "about you", "about yourself",
    "erzahlen sie", "erzahl", "beschreiben sie", "beschreibe", "warum", "was", "wie",
    "welche", "weshalb", "conte nos", "conte", "descreva", "por que", "porque", "o que",
    "como", "qual", "cuentanos", "cuentenos", "describe tu", "describa", "que", "cual",
    "parlez nous", "parle nous", "decrivez", "pourquoi", "quel", "quelle", "comment",
    "motivation", "cover letter", "anschreiben", "carta de apresentacao",
    "carta de presentacion", "lettre de motivation",
)


def find_phrases(toks: tuple[str, ...], phrases: PhraseSet) -> int:
    return phrases.longest(toks)


def starts_with_phrase(toks: tuple[str, ...], phrases: PhraseSet) -> bool:
    return phrases.starts(toks)
