"""Hostile text, and how to tell whether a page turned it into markup.

PAYLOADS go into every free-text field of the hub (approval comments, actors
and messages of events, condition reasons and messages, ConfigMap data, the
placement and strategy names of a run's spec, query parameters). Rendered as
text each reads back unchanged; rendered as markup each would leave a trace
that injected() finds in the parsed HTML:

- an element outside the dashboard's vocabulary (img, iframe, style,
  b …), a `<meta http-equiv>`, a script with no src or one from elsewhere;
- an attribute outside the vocabulary, any `on*` handler, a `data-hx-*`;
- an htmx trigger `load`, an URL attribute that is `javascript:` or points at
  /MARKER/, a `ws-connect` other than /ws/…;
- an id twice (a payload swapping itself in out of band as #timeline).

The checks parse the page (html.parser), so an escaped payload inside an
attribute value or text is fine, and a page that echoes a payload in a value
attribute (a filter field) is not mistaken for an injection.
"""

from html.parser import HTMLParser

MARKER = "pwned"

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "img-onerror": '"><img src=x onerror=alert(1)>',
    "svg-onload": "<svg/onload=alert(1)>",
    "single-quote-break": "' onmouseover='alert(1)' x='",
    "double-quote-break": f'" hx-get="/{MARKER}/" hx-trigger="load" x="',
    "htmx-div": f'<div hx-get="/{MARKER}/" hx-trigger="load">x</div>',
    "htmx-data-attr": f'<span data-hx-post="/{MARKER}/" data-hx-trigger="load">x</span>',
    "htmx-oob": f'<section id="timeline" hx-swap-oob="true">{MARKER}</section>',
    "ws-connect": f'<div hx-ext="ws" ws-connect="/{MARKER}/">x</div>',
    "javascript-url": "javascript:alert(1)",
    "anchor-javascript": '<a href="javascript:alert(1)">click</a>',
    "textarea-break": "</textarea><script>alert(1)</script>",
    "title-break": "</title><script>alert(1)</script>",
    "template-syntax": "{{ 7*7 }} {% csrf_token %} ${7*7} {{7*7}}",
    "entities": "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#60;b&#62;",
    "iframe": '<iframe src="javascript:alert(1)"></iframe>',
    "meta-refresh": f'<meta http-equiv="refresh" content="0;url=/{MARKER}/">',
    "style-tag": "<style>body{display:none}</style>",
    "bidi": "release\u202egnp.exe\u2066 \u200b\u2067admin\u2069",
    "long": "A" * 300 + "<b>" + "B" * 3000,
}

# What the dashboard's templates (and rollouts/templatetags) emit.
DASHBOARD_TAGS = frozenset(
    "html head meta title link script body header nav main section div p span a ul ol li dl dt dd h1 h2 h3 h4 "
    "table thead tbody tr th td code strong time del ins progress dialog form label input select option "
    "textarea button details summary caption br "
    # The time view's drawing (rollouts/templatetags/timeview.py) and its legend.
    "svg rect line text".split())
DASHBOARD_ATTRIBUTES = frozenset(
    "action aria-current aria-hidden aria-label aria-labelledby aria-live aria-pressed autocomplete autofocus charset class "
    "colspan content data-close-dialog data-count data-countdown data-live-poll data-live-text data-opens-dialog "
    "data-refresh-url data-version datetime defer disabled download for hidden href hx-ext hx-get hx-headers hx-post hx-push-url hx-swap "
    "hx-swap-oob hx-target hx-trigger id lang max maxlength method name open rel required role rows scope selected size src "
    "step tabindex title type value ws-connect "
    "viewbox preserveaspectratio width height x y x1 x2 y1 y2 text-anchor data-now".split())
URL_ATTRIBUTES = frozenset("href src action formaction data-refresh-url hx-get hx-post hx-put hx-patch hx-delete ws-connect".split())
# Never on a page of ours; the admin has icons (img), hence two sets. An SVG
# payload (`<svg/onload=…>`) is caught by its on* handler: the time view draws SVG.
FORBIDDEN_TAGS = frozenset("iframe frame object embed style base math video audio".split())
DASHBOARD_FORBIDDEN_TAGS = FORBIDDEN_TAGS | {"img"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, [(name, value or "") for name, value in attrs]))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def text_of(html: str) -> str:
    """What a reader sees: the text content plus attribute values, entities decoded."""
    page = parse(html)
    return "".join(page.text) + " ".join(v for _, attrs in page.elements for _, v in attrs)


def injected(html: str, *, vocabulary: bool = True) -> list[str]:
    """Every trace of a payload rendered as markup; [] when there is none.
    `vocabulary=False` for pages that are not the dashboard's (the admin)."""
    problems, ids = [], set()
    forbidden = DASHBOARD_FORBIDDEN_TAGS if vocabulary else FORBIDDEN_TAGS
    for tag, attrs in parse(html).elements:
        if tag in forbidden or (vocabulary and tag not in DASHBOARD_TAGS):
            problems.append(f"element <{tag}>")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            problems.append("<meta http-equiv>")
        src = dict(attrs).get("src", "")
        if tag == "script" and (not src.startswith("/") or src.startswith("//") or MARKER in src):
            problems.append("inline or foreign <script>")
        for name, value in attrs:
            problems += _attribute_problems(tag, name, value, vocabulary)
            if name == "id":
                if value in ids:
                    problems.append(f"id {value!r} twice")
                ids.add(value)
    return problems


def _attribute_problems(tag: str, name: str, value: str, vocabulary: bool) -> list[str]:
    problems = []
    if name.startswith("on") or name.startswith("data-hx-") or (vocabulary and name not in DASHBOARD_ATTRIBUTES):
        problems.append(f"attribute {name}= on <{tag}>")
    if name in URL_ATTRIBUTES:
        url = value.strip().lower()
        if url.startswith(("javascript:", "data:", f"/{MARKER}")):
            problems.append(f"{name}={value!r} on <{tag}>")
    if name == "ws-connect" and not value.startswith("/ws/"):
        problems.append(f"ws-connect={value!r}")
    if name == "hx-trigger" and "load" in value:
        problems.append(f"hx-trigger={value!r}")
    return problems
