"""How the app serves the widget: the demo page, the script and styles, the texts, and the headers on each
(CSP, framing, CORS, caching), the read allowance, and the script's own safety rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.channels.web.assets import STATIC
from bot.channels.web.texts import language_of, tel_uri
from knowledge.clinic import load_clinic_profile
from knowledge.replies import DEFAULT_REPLIES
from tests.patient import Patient

CLINIC = load_clinic_profile()
WIDGET_JS = (STATIC / "widget.js").read_text()
CLINIC_SITE = "https://www.birchwood-skin.example"


def csp_directives(header: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def test_the_demo_page_embeds_the_widget_with_one_script_tag_under_a_strict_policy(client) -> None:
    page = client.get("/")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    scripts = re.findall(r"<script\b[^>]*>", page.text)
    assert scripts == ['<script src="/widget/widget.js" defer data-position="right">']
    assert CLINIC.name in page.text and CLINIC.phone in page.text
    policy = csp_directives(page.headers["content-security-policy"])
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'" and policy["trusted-types"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'" and page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"


def test_the_clinics_own_site_may_frame_the_page_when_configured(make_client) -> None:
    client = make_client(frame_ancestors=f"{CLINIC_SITE}, https://clinic.example")
    page = client.get("/")

    policy = csp_directives(page.headers["content-security-policy"])
    assert policy["frame-ancestors"] == f"{CLINIC_SITE} https://clinic.example"
    assert "x-frame-options" not in page.headers


@pytest.mark.parametrize(
    ("name", "media_type"), [("widget.js", "text/javascript"), ("widget.css", "text/css")]
)
def test_the_script_and_styles_are_served_gzipped_cacheable_and_loadable_from_the_clinics_site(
    client, name, media_type
) -> None:
    served = client.get(f"/widget/{name}", headers={"accept-encoding": "gzip"})

    assert served.status_code == 200 and served.headers["content-type"].startswith(media_type)
    assert served.headers["content-encoding"] == "gzip"
    assert served.content == (STATIC / name).read_bytes(), "the client decoded the gzip to the very file"
    assert served.headers["cross-origin-resource-policy"] == "cross-origin"
    assert served.headers["cache-control"].startswith("public") and served.headers["etag"]
    again = client.get(f"/widget/{name}", headers={"if-none-match": served.headers["etag"]})
    assert again.status_code == 304 and not again.content
    plain = client.get(f"/widget/{name}", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == served.content


@pytest.mark.parametrize(
    "path",
    ["/widget/missing.js", "/widget/..%2Fsettings.py", "/widget/%2e%2e%2fmain.py", "/widget/demo.html"],
)
def test_nothing_else_is_served_from_the_widget_folder(client, path) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert set(response.json()) == {"detail", "problems"}


def test_the_config_carries_every_text_the_script_shows_from_the_replies_file(client) -> None:
    config = client.get("/widget/config").json()

    used = set(re.findall(r"\bt\(\"([a-z_]+)\"", WIDGET_JS))
    assert used, "the script names its texts with t(...)"
    assert used <= set(config["texts"]), f"missing texts: {used - set(config['texts'])}"
    replies = yaml.safe_load(Path(DEFAULT_REPLIES).read_text())
    assert config["texts"]["disclaimer"] == " ".join(replies["widget_disclaimer"]["en"].split()).replace(
        "{emergency_number}", CLINIC.emergency_number
    )
    assert config["texts"]["talk_payload"] == replies["handoff_button"]["en"]
    leftovers = {
        name: set(re.findall(r"\{(\w+)\}", text)) - {"clinic_name", "title"}
        for name, text in config["texts"].items()
    }
    assert not any(leftovers.values()), leftovers
    assert config["clinic"]["phone_uri"] == tel_uri(CLINIC.phone)
    assert config["clinic"]["emergency_uri"] == f"tel:{CLINIC.emergency_number}"
    assert config["max_message_chars"] == 2000


def test_the_script_holds_no_patient_facing_wording() -> None:
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", WIDGET_JS, flags=re.S)  # comments may explain in English
    strings = re.findall(r"\"([^\"\\\n]*)\"", code)
    sentences = [s for s in strings if re.search(r"[A-Za-z]{3,} [A-Za-z]{3,} [A-Za-z]{3,}", s)]
    assert sentences == [], "fixed texts belong in knowledge/replies.yml"


@pytest.mark.parametrize(
    ("requested", "language"),
    [("es", "es"), ("es-MX", "es"), ("pt_BR", "pt"), ("<script>", "en"), (None, "en")],
)
def test_the_language_comes_from_the_sites_setting_and_falls_back_to_english(
    client, requested, language
) -> None:
    assert language_of(requested) == language
    params = {"lang": requested} if requested else {}
    config = client.get("/widget/config", params=params).json()
    assert config["language"] == language
    assert config["texts"]["send"] == "Send", "texts a language lacks are the English ones"


def test_the_script_never_writes_text_as_html_nor_runs_strings_as_code() -> None:
    sinks = re.findall(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\"on",
        WIDGET_JS,
    )
    assert sinks == []
    assert "textContent" in WIDGET_JS and "createTextNode" in WIDGET_JS
    assert re.findall(r"protocol === \"(\w+:)\"", WIDGET_JS) == ["https:", "http:", "tel:"]


def test_the_script_loads_nothing_from_anywhere_else() -> None:
    code = re.sub(r"/\*.*?\*/", "", WIDGET_JS, flags=re.S)
    assert not re.findall(r"https?://[a-z]", code), "no CDN, no third-party script, no tracking"
    assert "document.cookie" not in code and "sessionStorage" not in code


def test_the_chat_api_answers_the_clinics_site_across_origins_when_configured(make_client) -> None:
    client = make_client(cors_origins=CLINIC_SITE)
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-session-token",
    }

    allowed = client.options("/api/chat", headers={"origin": CLINIC_SITE, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CLINIC_SITE
    assert "x-session-token" in allowed.headers["access-control-allow-headers"].lower()
    other = client.options("/api/chat", headers={"origin": "https://elsewhere.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    reply = client.post("/api/chat", json={"text": "hello"}, headers={"origin": CLINIC_SITE})
    assert reply.headers["access-control-allow-origin"] == CLINIC_SITE
    assert "access-control-allow-credentials" not in reply.headers, (
        "the token travels in a header, not a cookie"
    )


def test_without_a_configured_origin_no_other_site_may_call_the_api(client) -> None:
    reply = client.post("/api/chat", json={"text": "hello"}, headers={"origin": CLINIC_SITE})
    assert "access-control-allow-origin" not in reply.headers


def test_reads_have_their_own_allowance_with_the_friendly_slow_down(make_client) -> None:
    client = make_client(rate_limit_reads_per_client="4/minute", rate_limit_per_client="3/minute")
    someone = Patient(client)
    someone.says("hello")

    for _ in range(3):
        assert client.get("/widget/config").status_code == 200
    assert someone.messages()["messages"]  # the 4th read
    refused = client.get("/widget/config")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert refused.json()["detail"] == client.services.replies.text("slow_down")
    polled = client.get(f"/api/conversations/{someone.session_id}/messages", headers=someone.headers())
    assert polled.status_code == 429
    # Polling never used the patient's message allowance: two more messages still go through.
    someone.says("can I wear makeup?")
    someone.says("and sunscreen?")


def test_the_demo_page_previews_the_embed_options_safely(client) -> None:
    page = client.get("/", params={"color": "#aa3377", "position": "left", "name": '"><script>x()</script>'})

    assert page.status_code == 200
    [tag] = re.findall(r"<script\b[^>]*>", page.text)
    assert 'data-color="#aa3377"' in tag and 'data-position="left"' in tag
    assert "&#34;&gt;&lt;script&gt;x()&lt;/script&gt;" in tag, "a name is an attribute value, escaped"
    for bad in ({"color": "red"}, {"position": "top"}, {"lang": "en;x"}):
        refused = client.get("/", params=bad)
        assert refused.status_code == 422 and refused.json()["problems"]
