"""Expected kinds for every field of the saved forms in tests/bridge/forms/ (None = no kind).

Secrets have their kind too (cc-number, current-password, ...); SENSITIVE_REFS lists them: they
must come out sensitive and never get a value.

Shared by the classifier tests and benchmarks (bridge.py, forms.py). Languages: en, de, pt (BR,
PT), es, fr, it, nl.
"""

from __future__ import annotations

from pathlib import Path

FORMS_DIR = Path(__file__).parent / "forms"

EXPECTED: dict[str, dict[str, str | None]] = {
    "signup_en.html": {
        "first": "given-name", "last": "family-name", "email": "email", "phone": "tel",
        "pw": "current-password", "pw2": "new-password", "website": "url", "about": "freetext",
        "fax_hp": None, "csrf": None, "go": None,
    },
    "checkout_en.html": {
        "s-given": "given-name", "s-family": "family-name", "s-line1": "address-line1",
        "s-line2": "address-line2", "s-city": "address-level2", "s-state": "address-level1",
        "s-zip": "postal-code", "s-country": "country", "cc-name": "cc-name", "cc-number": "cc-number",
        "cc-exp": "cc-exp", "cc-csc": "cc-csc", "contact-email": "email", "contact-tel": "tel",
        "promo": None,
    },
    "job_en.html": {
        "full_name": "name", "applicant_email": "email", "applicant_phone": "tel",
        "linkedin": "url", "current_company": "organization", "current_title": "organization-title",
        "why": "freetext", "cover": "freetext", "resume": None, "ssn": None, "start": "freetext",
    },
    "kontakt_de.html": {
        "vorname": "given-name", "nachname": "family-name", "mail": "email", "telefon": "tel",
        "strasse": "street-address", "plz": "postal-code", "ort": "address-level2",
        "land": "country", "nachricht": "freetext", "hpfeld": None,
    },
    "registrierung_de.html": {
        "anrede": "honorific-prefix", "benutzername": "username", "passwort": "current-password", "geburtsdatum": "bday",
        "firma": "organization", "beruf": "organization-title", "handy": "tel",
        "steuerid": None, "webseite": "url", "suche": None,
    },
    "cadastro_ptbr.html": {
        "nome_completo": "name", "email_contato": "email", "celular": "tel", "cpf": None,
        "cep": "postal-code", "endereco": "address-line1", "complemento": "address-line2",
        "cidade": "address-level2", "uf": "address-level1", "nascimento": "bday", "senha": "current-password",
    },
    "conta_pt.html": {
        "pnome": "given-name", "apelido": "family-name", "morada": "street-address",
        "cpostal": "postal-code", "localidade": "address-level2", "telemovel": "tel",
        "nif": None, "empresa": "organization", "sobre": "freetext",
    },
    "registro_es.html": {
        "nombre": "given-name", "apellidos": "family-name", "correo": "email", "telefono": "tel",
        "direccion": "street-address", "cp": "postal-code", "ciudad": "address-level2",
        "provincia": "address-level1", "pais": "country", "dni": None, "motivo": "freetext",
        "buscar": None,
    },
    "inscription_fr.html": {
        "prenom": "given-name", "nom": "family-name", "courriel": "email", "portable": "tel",
        "adresse": "address-line1", "complement": "address-line2", "codepostal": "postal-code",
        "ville": "address-level2", "pays": "country", "entreprise": "organization",
        "poste": "organization-title", "presentation": "freetext", "mdp": "current-password",
    },
    "login_en.html": {
        "q": None, "username": "username", "password": "current-password", "otp": "one-time-code", "remember": None,
        "nl-email": "email", "nl-name": "name",
    },
    "traps_en.html": {
        "name": "name", "email": "email", "zero": None, "clear": None, "faded": None,
        "city": "address-level2", "offscreen": None, "botcheck": None, "gone": None,
        "ghost": None, "locked": None, "off": None, "honeypot": None, "tellme": "freetext",
    },
    "nolabels_en.html": {
        "firstName": "given-name", "last_name": "family-name", "emailAddress": "email",
        "phoneNumber": "tel", "zipCode": "postal-code", "addressLine1": "address-line1",
        "addressLine2": "address-line2", "company_name": "organization",
        "jobTitle": "organization-title", "dateOfBirth": "bday", "x7": "address-level2",
        "x8": None,
    },
    "frames_mixed.html": {
        "m1": "email", "m2": "address-level2", "m3": "postal-code", "m4": "organization",
        "m5": "tel", "m6": "country", "f1": None, "f2": None, "g1": "tel",
    },
    "pago_mixed.html": {
        "titular": "cc-name", "numtarjeta": "cc-number", "caducidad": "cc-exp", "cvv": "cc-csc", "iban": None,
        "facturacion": "street-address", "cp_fr": "postal-code", "empresa_es": "organization",
        "tel_empresa": "tel", "sms": "one-time-code",
    },
    "checkout_parts_en.html": {
        "ship_first": "given-name", "ship_last": "family-name", "ship_street": "address-line1",
        "ship_apt": "address-line2", "ship_city": "address-level2", "ship_state": "address-level1",
        "ship_zip": "postal-code", "ship_country": "country", "phone1": "tel-area-code",
        "phone2": "tel-local-prefix", "phone3": "tel-local-suffix", "phone4": "tel-extension",
        "contact_email": "email", "dob_m": "bday-month", "dob_d": "bday-day", "dob_y": "bday-year",
        "ctl00_Main_txtCompanyName": "organization", "cc_name": "cc-name", "cc_num": "cc-number",
        "exp_m": "cc-exp-month", "exp_y": "cc-exp-year", "cc_cvv": "cc-csc", "cc_brand": "cc-type",
        "bill_first": "given-name", "bill_last": "family-name", "bill_street": "street-address",
        "bill_zip": "postal-code", "promo": None, "offer": None, "comments": None,
        "fl_city": "address-level2", "member": None,
    },
    "registrazione_it.html": {
        "nome": "given-name", "cognome": "family-name", "email_it": "email", "cell": "tel",
        "via": "street-address", "cap": "postal-code", "citta": "address-level2",
        "prov": "address-level1", "cf": None, "pw_it": "current-password", "sconto": None,
    },
    "aanmelden_nl.html": {
        "vnaam": "given-name", "tv": "additional-name", "anaam": "family-name",
        "straat": "street-address", "pc": "postal-code", "wpl": "address-level2",
        "land_nl": "country", "tel_nl": "tel", "gebdat": "bday", "ww": "current-password", "kc": None,
    },
    "hidden_css_en.html": {
        "v_email": "email", "v_city": "address-level2", "h_attr": None, "h_desc": None,
        "h_child": None, "h_translate": None, "h_scale": None, "h_clip_inset": None,
        "h_clip_circle": None, "h_clip": None, "h_offscreen": None, "h_opacity": None,
        "h_details": None, "h_collapsed": "email", "h_covered": "address-level2",  # need layout
        "fi_ok": "email", "fi_none": None, "fi_zero": None, "fi_vis": None, "fi_sandbox": None,
    },
}

# Fields that hold secrets or identity numbers: they must come out sensitive and never get a value.
SENSITIVE_REFS: dict[str, set[str]] = {
    "signup_en.html": {"pw", "pw2"},
    "checkout_en.html": {"cc-name", "cc-number", "cc-exp", "cc-csc"},
    "job_en.html": {"ssn"},
    "registrierung_de.html": {"benutzername", "passwort", "steuerid"},
    "cadastro_ptbr.html": {"cpf", "senha"},
    "conta_pt.html": {"nif"},
    "registro_es.html": {"dni"},
    "inscription_fr.html": {"mdp"},
    "login_en.html": {"username", "password", "otp"},
    "pago_mixed.html": {"titular", "numtarjeta", "caducidad", "cvv", "iban", "sms"},
    "checkout_parts_en.html": {"cc_name", "cc_num", "exp_m", "exp_y", "cc_cvv", "cc_brand"},
    "registrazione_it.html": {"cf", "pw_it"},
    "aanmelden_nl.html": {"ww"},
}
