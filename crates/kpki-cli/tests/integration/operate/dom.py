"""Reads the DOM Chromium dumped (--dump-dom) with Python's html.parser and prints JSON: the
data-entry of every hierarchy item, the (severity, code, entry, path) of every findings-table row,
the code of every inline finding, the timeline rows, and every URL-bearing attribute."""
import json
import sys
from html.parser import HTMLParser


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.items, self.rows, self.inline, self.timeline, self.urls = [], [], [], [], []
        self.sections = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "li" and "item" in cls and "data-entry" in a:
            self.items.append({"entry": a["data-entry"], "kind": a.get("data-kind"), "class": cls})
        if tag == "tr" and "finding" in cls:
            self.rows.append([a.get("data-severity"), a.get("data-code"), a.get("data-entry"), a.get("data-path")])
        if tag == "li" and "data-finding" in a:
            self.inline.append(a["data-finding"])
        if tag == "g" and "tl-row" in cls:
            self.timeline.append(a.get("data-entry"))
        if tag == "section":
            self.sections.append(a.get("id"))
        for k in ("src", "href", "action", "srcset", "poster", "data"):
            if k in a and tag != "object":
                self.urls.append([tag, k, a[k]])


d = Dom()
d.feed(open(sys.argv[1], encoding="utf-8").read())
json.dump({"items": d.items, "rows": d.rows, "inline": d.inline, "timeline": d.timeline,
           "urls": d.urls, "sections": d.sections}, sys.stdout, indent=1)
