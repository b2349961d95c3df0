#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Scenarios and DOM checks for tests/ui/test_ui.sh.

  check_dom.py gen DIR                       write DIR/<scenario>.json (the /graph sequences)
  check_dom.py check SCENARIO DIR INTERVAL   read DIR/SCENARIO.dom (chromium --dump-dom) and
                                             DIR/SCENARIO.log (the fake server's requests), print
                                             PASS:/FAIL: lines, exit 1 if any check failed
  check_dom.py live DOM GRAPH                the live agent's page (vmtests/61-ui.sh): the DOM
                                             draws exactly the nodes and edges of the /graph
                                             document GRAPH, each once
  check_dom.py state DOM NODE-ID STATE       exit 0 if that node is drawn in that state (its
                                             state-STATE class, and the badge unless healthy)

Every sequence grows its counters by the same amounts at each step, so that whatever the
number of refreshes (two or more), the rates the page shows are step / interval.
"""
import json
import re
import sys
from html.parser import HTMLParser

XSS = "<img src=x onerror=alert(1)>"
ODD = 'shop "quoted" & <b>bold</b>'
STEPS = 60  # /graph answers before the sequence sticks at its last one

# (from, to): (base counters, step per refresh); "active" is a gauge and stays put.
MAIN_EDGES = {
    ("identity/frontend", "service/web"): ({"connections": 100, "failures": 0, "rejected": 0},
                                           {"connections": 20}),
    ("identity/batch", "service/web"): ({"connections": 10, "failures": 0, "rejected": 7},
                                        {"connections": 4, "rejected": 6}),
    ("identity/unknown", f"service/{ODD}"): ({"connections": 3, "failures": 1, "rejected": 0},
                                             {"connections": 2, "failures": 4}),
    (f"identity/{XSS}", f"service/{ODD}"): ({"connections": 0, "failures": 0, "rejected": 0},
                                            {"connections": 1}),
    ("service/web", "backend/web/198.18.1.2:8080"): ({"connections": 60, "failures": 0,
                                                      "active": 3}, {"connections": 14}),
    ("service/web", "backend/web/198.18.1.3:8080"): ({"connections": 40, "failures": 0,
                                                      "active": 0}, {"connections": 10}),
    ("service/web", "backend/web/198.18.1.4:8080"): ({"connections": 0, "failures": 2,
                                                      "active": 0}, {"failures": 8}),
    (f"service/{ODD}", f"backend/{ODD}/198.18.2.2:9000"): ({"connections": 3, "failures": 0,
                                                            "active": 1}, {"connections": 3}),
    (f"service/{ODD}", f"backend/{ODD}/198.18.2.3:9000"): ({"connections": 5, "failures": 5,
                                                            "active": 0}, {}),
}
MAIN_NODES = [
    ("identity/frontend", "identity", "frontend", None),
    ("identity/batch", "identity", "batch", None),
    ("identity/unknown", "identity", "unknown", None),
    (f"identity/{XSS}", "identity", XSS, None),
    ("service/web", "service", "web", None),
    (f"service/{ODD}", "service", ODD, None),
    ("service/idle", "service", "idle", None),
    ("backend/web/198.18.1.2:8080", "backend", "198.18.1.2:8080", "healthy"),
    ("backend/web/198.18.1.3:8080", "backend", "198.18.1.3:8080", "unhealthy"),
    ("backend/web/198.18.1.4:8080", "backend", "198.18.1.4:8080", "ejected"),
    (f"backend/{ODD}/198.18.2.2:9000", "backend", "198.18.2.2:9000", "draining"),
    (f"backend/{ODD}/198.18.2.3:9000", "backend", "198.18.2.3:9000", "healthy"),
    (f"backend/{ODD}/198.18.2.9:9000", "backend", "198.18.2.9:9000", "healthy"),
]
BADGE = {"unhealthy": "UNHEALTHY", "ejected": "EJECTED", "draining": "DRAINING"}


def node(nid, kind, name, state):
    n = {"id": nid, "kind": kind, "name": name}
    if state:
        n["state"] = state
    return n


def main_doc(k):
    edges = []
    for (f, t), (base, step) in MAIN_EDGES.items():
        e = {"from": f, "to": t}
        for c, v in base.items():
            e[c] = v + (k * step.get(c, 0) if c != "active" else 0)
        edges.append(e)
    return {"nodes": [node(*n) for n in MAIN_NODES], "edges": edges}


def big_doc(k):
    """5 identities x 50 services x 10 backends; every 7th backend ejected, every 11th unhealthy."""
    nodes, edges = [], []
    for i in range(5):
        nodes.append(node(f"identity/team-{i}", "identity", f"team-{i}", None))
    for s in range(50):
        sid = f"service/svc-{s:02d}"
        nodes.append(node(sid, "service", f"svc-{s:02d}", None))
        edges.append({"from": f"identity/team-{s % 5}", "to": sid, "connections": 100 + 10 * k,
                      "failures": k if s % 9 == 0 else 0, "rejected": 0})
        for b in range(10):
            n = s * 10 + b
            state = "ejected" if n % 7 == 3 else "unhealthy" if n % 11 == 5 else "healthy"
            bid = f"backend/svc-{s:02d}/198.18.{s}.{b + 2}:8080"
            nodes.append(node(bid, "backend", f"198.18.{s}.{b + 2}:8080", state))
            edges.append({"from": sid, "to": bid, "connections": 10 + k, "failures": 0,
                          "active": b % 3})
    return {"nodes": nodes, "edges": edges}


def gen(d):
    seqs = {
        "main": [main_doc(k) for k in range(STEPS)],
        "interval": [main_doc(k) for k in range(STEPS)],
        "error": [main_doc(0), {"_status": 503, "_body": "agent is down"}],
        "empty": [{"nodes": [], "edges": []}],
        "big": [big_doc(k) for k in range(STEPS)],
        "fold": [big_doc(k) for k in range(STEPS)],
    }
    for name, seq in seqs.items():
        with open(f"{d}/{name}.json", "w", encoding="utf-8") as f:
            json.dump(seq, f)


class Elem:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.text = [], []

    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def all_text(self):
        out = list(self.text)
        for c in self.children:
            out.append(c.all_text())
        return "".join(out)

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def find(self, pred):
        return [e for e in self.iter() if pred(e)]


VOID = {"meta", "link", "br", "img", "input", "hr", "source", "area", "base", "col", "embed",
        "param", "track", "wbr"}


class Tree(HTMLParser):
    """The serialized DOM as a tree. Text is kept in order only within an element, which is
    enough here: labels and titles hold text or tspans, never both interleaved."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Elem("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        e = Elem(tag, attrs, self.cur)
        self.cur.children.append(e)
        if tag not in VOID:
            self.cur = e

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Elem(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        e = self.cur
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.cur = e.parent

    def handle_data(self, data):
        self.cur.text.append(data)


class Checks:
    def __init__(self, scenario):
        self.scenario, self.failed, self.passed = scenario, 0, 0

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print(f"PASS: {self.scenario}: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {self.scenario}: {what}" + (f": {detail}" if detail else ""))
        return cond


def child_title(e):
    t = [c for c in e.children if c.tag == "title"]
    return t[0].all_text() if t else None


def drawn(root):
    svg = root.find(lambda e: e.tag == "svg" and e.attrs.get("id") == "graph")
    svg = svg[0] if svg else Elem("svg", {}, None)
    nodes = {e.attrs.get("data-id"): e for e in svg.find(lambda e: "node" in e.classes())}
    edges = {(e.attrs.get("data-from"), e.attrs.get("data-to")): e
             for e in svg.find(lambda e: "edge" in e.classes())}
    return svg, nodes, edges


def label_of(e):
    lab = [c for c in e.children if c.tag == "text" and "label" in c.classes()]
    return lab[0].all_text() if lab else None


def spans(edge):
    out = {}
    for t in edge.find(lambda x: x.tag == "tspan"):
        for c in t.classes():
            out[c] = t.all_text().lstrip(" ·")
    return out


def rate_of(text):
    m = re.fullmatch(r"(?:fail |rej )?(\d+\.\d)/s", text or "")
    return float(m.group(1)) if m else None


def check_requests(c, d, scenario, min_graph, max_graph):
    with open(f"{d}/{scenario}.log", encoding="utf-8") as f:
        reqs = [ln.split(" ", 1) for ln in f.read().splitlines() if ln]
    other = [" ".join(r) for r in reqs
             if r[0] != "GET" or r[1].split("?", 1)[0] not in ("/ui", "/graph")]
    c.ok(not other, "the page requested only /ui and /graph", f"also {other}")
    n = sum(1 for r in reqs if r[1].split("?", 1)[0] == "/graph")
    c.ok(min_graph <= n <= max_graph, f"{min_graph}..{max_graph} GET /graph in the time budget",
         f"{n} requests")


def check_drawn(c, doc, nodes, edges):
    want_n = {n["id"]: n for n in doc["nodes"]}
    c.ok(set(nodes) == set(want_n), f"all {len(want_n)} nodes drawn, once each, nothing else",
         f"missing {sorted(set(want_n) - set(nodes))[:5]}, extra {sorted(set(nodes) - set(want_n))[:5]}")
    bad = [i for i, n in want_n.items() if i in nodes and
           (nodes[i].attrs.get("data-kind") != n["kind"] or label_of(nodes[i]) != n["name"])]
    c.ok(not bad, "each node shows its kind and its full name", f"wrong: {bad[:5]}")
    want_e = {(e["from"], e["to"]) for e in doc["edges"]}
    c.ok(set(edges) == want_e, f"all {len(want_e)} edges drawn, once each, nothing else",
         f"missing {sorted(want_e - set(edges))[:5]}, extra {sorted(set(edges) - want_e)[:5]}")
    untitled = [k for k, e in list(nodes.items()) + list(edges.items()) if not child_title(e)]
    c.ok(not untitled, "every node and edge has an SVG <title>", f"none on {untitled[:5]}")


def check_main(c, root, d, interval):
    with open(f"{d}/main.json", encoding="utf-8") as f:
        seq = json.load(f)
    svg, nodes, edges = drawn(root)
    check_drawn(c, seq[0], nodes, edges)
    c.ok(child_title(svg) is not None and "service map" in child_title(svg),
         "the SVG has a <title>")
    status = root.find(lambda e: e.attrs.get("id") == "status")
    st = status[0] if status else Elem("p", {}, None)
    c.ok(st.all_text().startswith("Updated ") and "error" not in st.classes(),
         "status line shows the last refresh", st.all_text())

    wrong = []
    for (f, t), (base, step) in MAIN_EDGES.items():
        s = spans(edges.get((f, t), Elem("g", {}, None)))
        for cls, counter, shown in (("rate-conn", "connections", True),
                                    ("rate-fail", "failures", base.get("failures", 0) > 0 or
                                     step.get("failures", 0) > 0),
                                    ("rate-rej", "rejected", base.get("rejected", 0) > 0 or
                                     step.get("rejected", 0) > 0)):
            want = step.get(counter, 0) / interval
            got = rate_of(s.get(cls))
            if not shown:
                if cls in s:
                    wrong.append(f"{f}->{t} {cls} shown as {s[cls]!r}")
            elif got is None or abs(got - want) > max(0.06, 0.05 * want):
                wrong.append(f"{f}->{t} {cls} {s.get(cls)!r}, want {want:.1f}/s")
    c.ok(not wrong, "rate labels are the counter steps per second", "; ".join(wrong))

    wrong = []
    for (f, t) in MAIN_EDGES:
        e = edges.get((f, t), Elem("g", {}, None))
        m = re.search(r"connections: (\d+) total", child_title(e) or "")
        got = spans(e).get("count")
        if not m or got != f"({m.group(1)})":
            wrong.append(f"{f}->{t} count {got!r}, title {child_title(e)!r}")
    c.ok(not wrong, "edge labels show the connections total beside the rate", "; ".join(wrong))

    e = edges.get(("identity/batch", "service/web"), Elem("g", {}, None))
    title = child_title(e) or ""
    m = re.search(r"connections: (\d+) total", title)
    c.ok(m is not None and (int(m.group(1)) - 10) % 4 == 0 and int(m.group(1)) >= 18 and
         re.search(r"rejected: \d+ total, %.1f/s" % (6 / interval), title) is not None,
         "edge <title> holds totals and rates", repr(title))

    for nid, _, _, state in MAIN_NODES:
        if not nid.startswith("backend/"):
            continue
        n = nodes.get(nid, Elem("g", {}, None))
        badges = n.find(lambda e: "badge" in e.classes())
        texts = [b.all_text() for b in badges]
        if state in BADGE:
            c.ok(texts == [BADGE[state]] and f"badge-{state}" in badges[0].classes() and
                 f"state-{state}" in n.classes(),
                 f"{state} backend {nid.split('/')[-1]} carries the {BADGE[state]} badge",
                 f"badges {texts}, classes {sorted(n.classes())}")
        else:
            c.ok(not badges, f"healthy backend {nid.split('/')[-1]} has no badge", f"{texts}")

    cls = {k: edges.get(k, Elem("g", {}, None)).classes() for k in MAIN_EDGES}
    fail = [k for k, (b, s) in MAIN_EDGES.items() if b.get("failures") or s.get("failures")]
    rej = [k for k, (b, s) in MAIN_EDGES.items() if b.get("rejected") or s.get("rejected")]
    c.ok(all("edge-fail" in cls[k] for k in fail) and
         all("edge-fail" not in v for k, v in cls.items() if k not in fail),
         "edges with failures (and only those) have the edge-fail class",
         str({f"{k[0]}->{k[1]}": sorted(v) for k, v in cls.items()}))
    c.ok(all("edge-rejected" in cls[k] for k in rej) and
         all("edge-rejected" not in v for k, v in cls.items() if k not in rej),
         "edges with rejections (and only those) have the edge-rejected class")

    imgs = root.find(lambda e: e.tag in ("img", "b"))
    xss = nodes.get(f"identity/{XSS}", Elem("g", {}, None))
    odd = nodes.get(f"service/{ODD}", Elem("g", {}, None))
    c.ok(not imgs and label_of(xss) == XSS and label_of(odd) == ODD,
         "markup in names is shown as text, not parsed",
         f"<img>/<b> elements: {len(imgs)}, labels {label_of(xss)!r} {label_of(odd)!r}")


def check_error(c, root, d):
    with open(f"{d}/error.json", encoding="utf-8") as f:
        seq = json.load(f)
    _, nodes, edges = drawn(root)
    check_drawn(c, seq[0], nodes, edges)
    st = root.find(lambda e: e.attrs.get("id") == "status")
    st = st[0] if st else Elem("p", {}, None)
    t = st.all_text()
    c.ok("error" in st.classes() and t.startswith("Agent unreachable") and "503" in t and
         "showing the map from" in t, "an agent error shows in the status line, the map stays", t)


def check_empty(c, root):
    _, nodes, edges = drawn(root)
    empty = root.find(lambda e: e.attrs.get("id") == "empty")
    st = root.find(lambda e: e.attrs.get("id") == "status")
    c.ok(not nodes and not edges and len(empty) == 1 and st and "error" not in st[0].classes(),
         "an empty map draws no nodes and says so",
         f"{len(nodes)} nodes, {len(edges)} edges, empty note {len(empty)}")


def texts_apart(svg):
    """Text elements that share an x and an anchor (a column of labels) must be at least a
    line apart; edge labels must fit in the gap between columns."""
    cols, long = {}, []
    for t in svg.find(lambda e: e.tag == "text" and "x" in e.attrs and "y" in e.attrs):
        key = (round(float(t.attrs["x"])), t.attrs.get("text-anchor", "start"))
        cols.setdefault(key, []).append(float(t.attrs["y"]))
        if "edge-label" in t.classes() and len(t.all_text()) > 34:
            long.append(t.all_text())
    close = []
    for key, ys in cols.items():
        ys.sort()
        close += [(key, a, b) for a, b in zip(ys, ys[1:]) if b - a < 12]
    return close, long


def check_big(c, root, d, name):
    with open(f"{d}/{name}.json", encoding="utf-8") as f:
        doc = json.load(f)[0]
    svg, nodes, edges = drawn(root)
    if name == "big":
        check_drawn(c, doc, nodes, edges)
    else:
        backs = [n for n in doc["nodes"] if n["kind"] == "backend"]
        bad = [n["id"] for n in backs if n.get("state") != "healthy" and n["id"] not in nodes]
        per = {}
        for i, n in nodes.items():
            if n.attrs.get("data-kind") == "backend":
                svc = i.split("/")[2 if i.startswith("fold/") else 1]
                per[svc] = per.get(svc, 0) + 1
        folds = [n for n in nodes.values() if "node-folded" in n.classes()]
        c.ok(not bad and max(per.values(), default=0) <= 4 and len(folds) == 50,
             "?fold=4: at most 4 backend nodes per service, every unhealthy/ejected one shown",
             f"hidden unhealthy {bad[:3]}, max per service {max(per.values(), default=0)}, "
             f"{len(folds)} fold nodes")
        fl = [label_of(n) for n in folds]
        c.ok(all(re.fullmatch(r"\+\d+ healthy", x or "") for x in fl), "fold nodes say how many",
             str(fl[:3]))
    close, long = texts_apart(svg)
    c.ok(not close, "no two labels in a column closer than a line", str(close[:5]))
    c.ok(not long, "edge labels fit between the columns", str(long[:3]))
    h = float(svg.attrs.get("height", 0))
    ys = [float(t.attrs["y"]) for t in svg.find(lambda e: e.tag == "text" and "y" in e.attrs)]
    c.ok(ys and max(ys) < h, "the SVG is tall enough for every label (the page scrolls)",
         f"height {h}, lowest label {max(ys, default=0)}")


def parse_dom(path):
    tree = Tree()
    with open(path, encoding="utf-8") as f:
        tree.feed(f.read())
    return tree.root


def live(dom, graph):
    c = Checks("live")
    with open(graph, encoding="utf-8") as f:
        doc = json.load(f)
    _, nodes, edges = drawn(parse_dom(dom))
    check_drawn(c, doc, nodes, edges)
    return 1 if c.failed else 0


def state(dom, nid, want):
    _, nodes, _ = drawn(parse_dom(dom))
    n = nodes.get(nid)
    if n is None:
        print(f"{nid}: not drawn")
        return 1
    badges = [b.all_text() for b in n.find(lambda e: "badge" in e.classes())]
    print(f"{nid}: classes {sorted(n.classes())}, badges {badges}")
    return 0 if f"state-{want}" in n.classes() and badges == ([BADGE[want]] if want in BADGE
                                                               else []) else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "live":
        return live(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "state":
        return state(sys.argv[2], sys.argv[3], sys.argv[4])
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
        return 0
    if len(sys.argv) != 5 or sys.argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    scenario, d, interval = sys.argv[2], sys.argv[3], float(sys.argv[4])
    c = Checks(scenario)
    tree = Tree()
    with open(f"{d}/{scenario}.dom", encoding="utf-8") as f:
        tree.feed(f.read())
    root = tree.root
    if scenario == "main":
        check_main(c, root, d, interval)
        check_requests(c, d, scenario, 2, 3)
    elif scenario == "interval":
        check_main(c, root, d, interval)
        check_requests(c, d, scenario, 4, 6)
    elif scenario == "error":
        check_error(c, root, d)
        check_requests(c, d, scenario, 2, 3)
    elif scenario == "empty":
        check_empty(c, root)
        check_requests(c, d, scenario, 1, 3)
    elif scenario in ("big", "fold"):
        check_big(c, root, d, scenario)
        check_requests(c, d, scenario, 1, 3)
    else:
        print(f"check_dom: unknown scenario {scenario}", file=sys.stderr)
        return 2
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
