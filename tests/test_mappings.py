"""The shipped mapping files cover every official class, and the parser is safe.

The official class lists are copied here from the datasets' distributions
(UCF101 classInd.txt, HMDB51 folder names, Hollywood2 ClipSets), so a class
that is renamed, dropped or misspelled in a mapping file fails loudly — the
paper's code lost classes to exactly such label typos.
"""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError
from fiftyone_genre.labels.mapping import (
    MAPPINGS_DIR,
    SHIPPED_SOURCES,
    GenreMapping,
    load_mapping,
    parse_mapping,
    parse_mapping_text,
)

UCF101 = (
    "ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch "
    "Basketball BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles "
    "BodyWeightSquats Bowling BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth "
    "CleanAndJerk CliffDiving CricketBowling CricketShot CuttingInKitchen Diving Drumming Fencing "
    "FieldHockeyPenalty FloorGymnastics FrisbeeCatch FrontCrawl GolfSwing Haircut Hammering "
    "HammerThrow HandstandPushups HandstandWalking HeadMassage HighJump HorseRace HorseRiding "
    "HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope Kayaking Knitting "
    "LongJump Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing "
    "PlayingCello PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar "
    "PlayingTabla PlayingViolin PoleVault PommelHorse PullUps Punch PushUps Rafting "
    "RockClimbingIndoor RopeClimbing Rowing SalsaSpin ShavingBeard Shotput SkateBoarding Skiing "
    "Skijet SkyDiving SoccerJuggling SoccerPenalty StillRings SumoWrestling Surfing Swing "
    "TableTennisShot TaiChi TennisSwing ThrowDiscus TrampolineJumping Typing UnevenBars "
    "VolleyballSpiking WalkingWithDog WallPushups WritingOnBoard YoYo"
).split()

HMDB51 = (
    "brush_hair cartwheel catch chew clap climb climb_stairs dive draw_sword dribble drink eat "
    "fall_floor fencing flic_flac golf handstand hit hug jump kick kick_ball kiss laugh pick pour "
    "pullup punch push pushup ride_bike ride_horse run shake_hands shoot_ball shoot_bow shoot_gun "
    "sit situp smile smoke somersault stand swing_baseball sword sword_exercise talk throw turn "
    "walk wave"
).split()

HOLLYWOOD2_ACTIONS = (
    "AnswerPhone DriveCar Eat FightPerson GetOutCar HandShake HugPerson Kiss Run SitDown SitUp "
    "StandUp"
).split()
HOLLYWOOD2_SCENES = (
    "EXT-House EXT-Road INT-Bedroom INT-Car INT-Hotel INT-Kitchen INT-LivingRoom INT-Office "
    "INT-Restaurant INT-Shop"
).split()

OFFICIAL = {
    "ucf101": UCF101,
    "hmdb51": HMDB51,
    "hollywood2": HOLLYWOOD2_ACTIONS + HOLLYWOOD2_SCENES,
}


def test_official_lists_have_the_documented_sizes():
    assert len(set(UCF101)) == 101
    assert len(set(HMDB51)) == 51
    assert len(set(HOLLYWOOD2_ACTIONS)) == 12 and len(set(HOLLYWOOD2_SCENES)) == 10


@pytest.mark.parametrize("source", sorted(OFFICIAL))
def test_every_official_class_is_mapped_or_explicitly_unmapped(source):
    mapping = load_mapping(source)
    official = set(OFFICIAL[source])
    listed = set(mapping.classes)
    assert official - listed == set(), f"{source}: classes missing from the mapping"
    assert listed - official == set(), f"{source}: keys that are no official class (typos?)"
    # each class appears once: either under map (a genre) or unmapped (None)
    raw = yaml.safe_load((MAPPINGS_DIR / f"{source}.yaml").read_text())
    in_map = set(raw.get("map") or {})
    in_unmapped = set(raw.get("unmapped") or [])
    assert in_map & in_unmapped == set()
    assert in_map | in_unmapped == official
    assert len(raw.get("unmapped") or []) == len(in_unmapped), "duplicate in unmapped list"


@pytest.mark.parametrize("source", SHIPPED_SOURCES)
def test_shipped_files_load_with_safe_load_and_use_only_the_six_genres(source):
    path = MAPPINGS_DIR / f"{source}.yaml"
    text = path.read_text()
    assert text.startswith("#"), "the format is documented at the top of the file"
    data = yaml.safe_load(text)
    assert data["source"] == source
    mapping = load_mapping(source)
    assert mapping.source == source
    assert mapping.mapped_genres <= set(g.GENRES)
    assert set(mapping.priority) <= set(g.GENRES)
    for value in (data.get("map") or {}).values():
        assert value is None or value in g.GENRES


def test_genre_judgements_follow_the_paper():
    ucf, hmdb, h2 = load_mapping("ucf101"), load_mapping("hmdb51"), load_mapping("hollywood2")
    assert ucf.resolve("Punch") == g.ACTION
    assert ucf.resolve("Nunchucks") == g.ACTION
    assert ucf.resolve("Basketball") == g.SPORTS
    assert ucf.resolve("ApplyEyeMakeup") is None
    assert ucf.resolve("Typing") is None
    assert hmdb.resolve("kiss") == g.ROMANCE and hmdb.resolve("hug") == g.ROMANCE
    assert hmdb.resolve("shoot_gun") == g.ACTION and hmdb.resolve("sword") == g.ACTION
    assert hmdb.resolve("golf") == g.SPORTS
    assert hmdb.resolve("walk") is None
    assert h2.resolve("FightPerson") == g.ACTION
    assert h2.resolve("Kiss") == g.ROMANCE and h2.resolve("HugPerson") == g.ROMANCE
    assert h2.resolve("INT-Car") is None
    # every genre the model trains on except Horror/Sci-Fi/Animation comes from action data
    assert {ucf.resolve(c) for c in UCF101} - {None} == {g.ACTION, g.SPORTS}


def test_yt8m_rules_names_then_rules_then_default():
    m = load_mapping("yt8m")
    ae, sports, games = "Arts & Entertainment", "Sports", "Games"
    assert "default" in yaml.safe_load((MAPPINGS_DIR / "yt8m.yaml").read_text())
    assert m.resolve("Animation", (ae,)) == g.ANIMATION
    assert m.resolve("Cartoon") == g.ANIMATION  # exact name, no verticals needed
    assert m.resolve("Japanese animation series", (ae,)) == g.ANIMATION  # name rule
    assert m.resolve("Football", (sports,)) == g.SPORTS  # vertical rule
    assert m.resolve("Football", ("Hobbies & Leisure", sports)) == g.SPORTS  # any vertical
    assert m.resolve("FIFA 15", (games, sports)) is None  # games before sports
    assert m.resolve("Plants vs. Zombies", (games,)) is None
    assert m.resolve("Zombie apocalypse film", (ae,)) == g.HORROR
    assert m.resolve("Zombie apocalypse film", ("Food & Drink",)) is None  # rule needs A&E
    assert m.resolve("Star Wars", (ae,)) == g.SCIENCE_FICTION
    assert m.resolve("Sports car", ("Autos & Vehicles", sports)) is None  # explicit unmapped
    assert m.resolve("Car", ("Autos & Vehicles",)) is None  # default
    assert m.resolve("Football") is None  # no verticals: vertical rules cannot match
    assert m.uses_verticals


def test_yt8m_vetoes_gameplay_toys_and_covers_but_not_listed_entities():
    m = load_mapping("yt8m")
    games, sports, ae, shop = "Games", "Sports", "Arts & Entertainment", "Shopping"
    assert m.vetoes("Video game", (games,)) and m.vetoes("Video game")  # by name, no verticals needed
    assert m.vetoes("FIFA 15", (games, sports)) and m.vetoes("Minecraft", (games,))  # the Games rule
    assert m.vetoes("Toy", (shop,)) and m.vetoes("Drawing") and m.vetoes("Piano")
    assert not m.vetoes("Game", (games,))  # listed under unmapped: exempt from the rule
    assert not m.vetoes("Table tennis", (games,)) and m.resolve("Table tennis", (games,)) == g.SPORTS
    assert not m.vetoes("Football", (sports,)) and not m.vetoes("Cartoon", (ae,))
    assert m.resolve("The Twilight Saga (film series)", (ae,)) == g.ROMANCE
    assert m.resolve("Call of Duty: Black Ops – Zombies", (ae,)) is None  # a game, not Horror


@pytest.mark.parametrize(
    "text, message",
    [
        ("map: {Cartoon: Animation}\nveto: Video game\n", "key 'veto': expected a list"),
        ("map: {Cartoon: Animation}\nveto: [Cartoon]\n", "'Cartoon' is both mapped to a genre and listed under 'veto'"),
        ("rules:\n  - {vertical1: Games, genre: Sports, veto: true}\n", "its genre must be null"),
        ("rules:\n  - {vertical1: Games, genre: null, veto: yes please}\n", "veto: expected true or false"),
    ],
)
def test_veto_errors_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_mapping_text(text, "m.yaml")


def test_folder_identity_mapping():
    m = load_mapping("folder")
    assert m.resolve("Animation") == g.ANIMATION
    assert m.resolve("science_fiction") == g.SCIENCE_FICTION
    assert m.resolve("horror") == g.HORROR
    assert m.resolve("cats") is None


# --- parser errors name the file and the key ---------------------------------


#: (mapping file text, what the error must say): each names the file and the key
BAD_MAPPINGS = [
    ("Punch: [Action\n", r"bad\.yaml.*not valid YAML"),
    ("Punch: 3\nKiss: Romance\n", r"bad\.yaml: key 'Punch': expected a genre name"),
    ("map:\n  Kiss: [Romance]\n", r"bad\.yaml: key 'Kiss'"),
    ("Punch: Sci-Fi\n", r"bad\.yaml: key 'Punch': unknown genre 'Sci-Fi'"),
    ("Punch: Action\nPunch: Sports\n", r"bad\.yaml.*duplicate key 'Punch'"),
    ("map: {Kiss: Romance}\nunmapped: [Kiss]\n", r"'Kiss' is both mapped and listed"),
    ("map: {Kiss: Romance}\nrules:\n  - {name_regex: '(', genre: Action}\n", r"rules\[0\]\.name_regex"),
    ("map: {Kiss: Romance}\nmapp: {}\n", r"unknown key\(s\) 'mapp'"),
    ("yes: Action\n", r"class name True is a bool"),  # YAML 1.1 turns yes into True
]


@pytest.mark.parametrize("text,message", BAD_MAPPINGS)
def test_errors_name_file_and_key(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_mapping(bad)


def test_missing_mapping_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such mapping file"):
        load_mapping(tmp_path / "missing.yaml")


def test_user_mapping_may_add_declared_genres(tmp_path):
    path = tmp_path / "docs.yaml"
    path.write_text("genres: [Documentary]\nmap:\n  Punch: Action\n  Typing: Documentary\n")
    m = load_mapping(path)
    assert m.resolve("Typing") == "Documentary"
    assert "Documentary" in m.genres
    flat = tmp_path / "flat.yaml"
    flat.write_text("Typing: Documentary\n")
    with pytest.raises(ConfigError):
        load_mapping(flat)
    assert load_mapping(flat, allow_new_genres=True).resolve("Typing") == "Documentary"


def test_a_class_named_like_a_section_key_in_a_flat_map():
    m = parse_mapping({"map": "Action", "rules": "Sports"})
    assert m.resolve("map") == g.ACTION and m.resolve("rules") == g.SPORTS


# --- property tests (issue 9): the parser never crashes, round-trips -----------

class_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
genre_values = st.one_of(st.none(), st.sampled_from(g.GENRES))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(class_names, genre_values, min_size=1, max_size=20))
def test_flat_mapping_round_trips_through_yaml(data):
    text = yaml.safe_dump(data, allow_unicode=True)
    m = parse_mapping_text(text, "gen.yaml")
    assert m.classes == data
    for name, genre in data.items():
        assert m.resolve(name) == genre


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        class_names,
        st.one_of(
            genre_values,
            st.integers(),
            st.floats(allow_nan=False),
            st.booleans(),
            st.lists(st.sampled_from(g.GENRES), max_size=2),
            st.text(max_size=10),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_arbitrary_values_give_a_mapping_or_a_config_error_naming_the_key(data):
    text = yaml.safe_dump(data, allow_unicode=True)
    try:
        m = parse_mapping_text(text, "gen.yaml")
    except ConfigError as e:
        msg = str(e)
        assert msg.startswith("gen.yaml")
        bad = [k for k, v in data.items() if not (v is None or v in g.GENRES or (isinstance(v, str) and v.strip() in g.GENRES))]
        assert bad, f"rejected a valid mapping: {msg}"
        assert any(repr(k) in msg for k in bad)
    else:
        assert isinstance(m, GenreMapping)
        for k, v in data.items():
            assert v is None or isinstance(v, str)
            assert m.resolve(k) == (v.strip() if isinstance(v, str) else None)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=200))
def test_arbitrary_text_never_crashes_the_parser(text):
    try:
        m = parse_mapping_text(text, "fuzz.yaml")
    except ConfigError as e:
        assert str(e).startswith("fuzz.yaml")
    else:
        assert m.mapped_genres <= set(g.GENRES)
