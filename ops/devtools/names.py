"""Names for the simulated university: many backgrounds, some written in their own script, and
enough of them that 600 students have about 600 distinct names (issue 27: the demo had 132, and two
"Tomasz Chen" on one programme page). Deterministic for a seed; drawn apart from the simulator's own
random stream, so that every other simulated figure is as it was.

A name keeps its given and family parts from one background (no "Siobhán Nakamura" by accident);
the scripts other than Latin are ones the PDFs embed Noto fonts for (ops.jobs.reports.fonts).
"""

from __future__ import annotations

import random

#: (given names, family names) per background; the weights below say how often each is drawn.
BACKGROUNDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        (
            "Oliver",
            "Amelia",
            "George",
            "Isla",
            "Harry",
            "Ava",
            "Jack",
            "Emily",
            "Thomas",
            "Grace",
            "Alfie",
            "Lily",
        ),
        (
            "Smith",
            "Taylor",
            "Brown",
            "Wilson",
            "Walker",
            "Wright",
            "Robinson",
            "Thompson",
            "Hall",
            "Green",
            "Baker",
        ),
    ),
    "welsh": (
        ("Carys", "Rhys", "Sian", "Dylan", "Ffion", "Gareth", "Cerys", "Owain", "Elin", "Iwan"),
        ("Jones", "Evans", "Hughes", "Pritchard", "Lloyd", "Morgan", "Griffiths", "Powell", "Rees", "Price"),
    ),
    "scottish_irish": (
        ("Siobhán", "Eilidh", "Niamh", "Callum", "Ciarán", "Aoife", "Fraser", "Róisín", "Seamus", "Orla"),
        ("MacLeod", "O'Brien", "Murphy", "Campbell", "Doyle", "Fitzgerald", "MacDonald", "Kelly", "Byrne"),
    ),
    "polish": (
        ("Tomasz", "Zofia", "Jakub", "Małgorzata", "Kacper", "Agnieszka", "Łukasz", "Wiktoria", "Paweł"),
        ("Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Lewandowski", "Kamińska", "Zieliński", "Szymańska"),
    ),
    "south_asian": (
        ("Priya", "Arjun", "Ananya", "Rohan", "Harpreet", "Sanjay", "Aisha", "Imran", "Deepika", "Farhan"),
        ("Patel", "Sharma", "Singh", "Gupta", "Khan", "Chaudhry", "Iyer", "Banerjee", "Hussain", "Reddy"),
    ),
    "west_african": (
        ("Kwame", "Adaeze", "Chidi", "Ama", "Kofi", "Ngozi", "Tunde", "Folake", "Yaw", "Chiamaka"),
        ("Okafor", "Mensah", "Adeyemi", "Boateng", "Okonkwo", "Asante", "Balogun", "Eze", "Owusu"),
    ),
    "east_african": (
        ("Amani", "Wanjiru", "Abdi", "Faith", "Tesfaye", "Hodan", "Baraka", "Selam"),
        ("Mwangi", "Otieno", "Haile", "Warsame", "Kiplagat", "Mohamed", "Achieng", "Tadesse"),
    ),
    "arabic_latin": (
        ("Omar", "Layla", "Yusuf", "Mariam", "Khalid", "Noor", "Hassan", "Salma", "Tariq"),
        ("Haddad", "Al-Sayed", "Nasser", "Mansour", "Khalil", "Saleh", "Aziz", "Hamdan"),
    ),
    "hispanic_portuguese": (
        ("Lucía", "Mateo", "Sofía", "Diego", "Valentina", "João", "Inês", "Tiago", "Camila"),
        ("García", "Rodríguez", "Fernández", "Silva", "Santos", "Oliveira", "Martínez", "Costa"),
    ),
    "european": (
        ("Lukas", "Chiara", "Anouk", "Matteo", "Élodie", "Søren", "Ingrid", "Niko", "Beatrix"),
        ("Müller", "Rossi", "de Vries", "Dubois", "Jensen", "Lindqvist", "Novák", "Papadopoulos"),
    ),
    "east_asian_latin": (
        ("Mei", "Hiroshi", "Ji-woo", "Wei", "Yuki", "Min-jun", "Xiao", "Haruto", "Linh"),
        ("Chen", "Nakamura", "Kim", "Wang", "Tanaka", "Park", "Liu", "Nguyen", "Zhang"),
    ),
    "caribbean": (
        ("Jamal", "Shanice", "Marcus", "Keisha", "Andre", "Tianna", "Delroy", "Janelle"),
        ("Campbell", "Brown", "Williams", "Grant", "Reid", "Clarke", "Francis", "Bailey"),
    ),
    # written in their own script
    "chinese": (
        ("伟", "芳", "静", "磊", "婷", "浩然", "子涵", "欣怡"),
        ("王", "李", "张", "刘", "陈", "杨", "黄", "赵"),
    ),
    "arabic": (
        ("محمد", "فاطمة", "أحمد", "ليلى", "يوسف", "مريم", "علي"),
        ("حداد", "منصور", "خليل", "صالح", "نصار", "عزيز"),
    ),
    "greek": (
        ("Γιώργος", "Μαρία", "Νίκος", "Ελένη", "Δημήτρης", "Σοφία"),
        ("Παπαδόπουλος", "Γεωργίου", "Οικονόμου", "Νικολάου", "Βασιλείου"),
    ),
    "cyrillic": (
        ("Олена", "Дмитро", "Анна", "Сергій", "Ірина", "Андрій"),
        ("Шевченко", "Коваленко", "Бондаренко", "Мельник", "Ткаченко"),
    ),
    "devanagari": (("अनन्या", "रोहन", "प्रिया", "अर्जुन", "दीपिका"), ("शर्मा", "वर्मा", "गुप्ता", "जोशी", "मिश्रा")),
}
WEIGHTS: dict[str, int] = {
    "english": 22,
    "welsh": 8,
    "scottish_irish": 7,
    "polish": 6,
    "south_asian": 12,
    "west_african": 7,
    "east_african": 4,
    "arabic_latin": 5,
    "hispanic_portuguese": 5,
    "european": 6,
    "east_asian_latin": 7,
    "caribbean": 4,
    "chinese": 2,
    "arabic": 2,
    "greek": 1,
    "cyrillic": 1,
    "devanagari": 1,
}


def distinct_names(count: int, seed: int) -> list[tuple[str, str]]:
    """`count` (given, family) names, all different while the pools last (about 1,000 of them),
    then drawn again: backgrounds by weight, a name not yet used within its background."""
    rng = random.Random(f"names:{seed}")
    left = {bg: [(g, f) for g in givens for f in families] for bg, (givens, families) in BACKGROUNDS.items()}
    for pool in left.values():
        rng.shuffle(pool)
    order = list(WEIGHTS)
    weights = [WEIGHTS[bg] for bg in order]
    out: list[tuple[str, str]] = []
    while len(out) < count:
        live = [(bg, w) for bg, w in zip(order, weights, strict=True) if left[bg]]
        if not live:
            left = {bg: [(g, f) for g in gv for f in fm] for bg, (gv, fm) in BACKGROUNDS.items()}
            continue
        background = rng.choices([bg for bg, _ in live], [w for _, w in live])[0]
        out.append(left[background].pop())
    return out
