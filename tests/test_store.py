"""The drawings store on SQLite and on a real PostgreSQL server: what is saved reads back exactly, bad
input is refused whole, writers at once lose nothing, and a store that is down or read-only says so."""

from __future__ import annotations

import datetime
import threading

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from digitdraw.drawings import store
from digitdraw.drawings.store import NewDrawing, Store, StoreError


@pytest.fixture
def opened(database_url):
    kept = Store(database_url)
    yield kept
    kept.close()


def a_drawing(label: int = 3, session_id: str = "browser-a", seed: int = 0, **changes) -> NewDrawing:
    rng = np.random.default_rng(seed)
    image = rng.random((28, 28), dtype=np.float32)
    probabilities = {model_id: rng.dirichlet(np.ones(10)) for model_id in (1, 2, 3, 4, 5)}
    sha = {model_id: f"{model_id:064x}" for model_id in probabilities}
    fields = {
        "label": label,
        "model_input": image,
        "probabilities": probabilities,
        "model_sha256": sha,
        "session_id": session_id,
        "canvas_png": b"\x89PNG fake",
    }
    return NewDrawing(**{**fields, **changes})


def test_a_saved_drawing_reads_back_exactly(opened):
    new = a_drawing(label=7)
    drawing_id = opened.save(new)
    (kept,) = opened.drawings()
    assert kept.id == drawing_id and kept.label == 7 and kept.session_id == "browser-a"
    assert np.array_equal(kept.model_input, new.model_input) and kept.model_input.dtype == np.float32
    assert kept.canvas_png == new.canvas_png
    assert kept.model_sha256 == dict(new.model_sha256)
    for model_id, probabilities in new.probabilities.items():
        assert np.array_equal(kept.probabilities[model_id], probabilities)
        assert kept.digit(model_id) == int(np.argmax(probabilities))
    assert kept.created_at.tzinfo is not None or opened.url.startswith("sqlite")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label": 10}, "label must be a digit"),
        ({"label": -1}, "label must be a digit"),
        ({"label": True}, "label must be a digit"),
        ({"label": "3"}, "label must be a digit"),
        ({"model_input": np.zeros((28, 27))}, "must be 28x28"),
        ({"model_input": np.full((28, 28), np.nan)}, "finite values in \\[0, 1\\]"),
        ({"model_input": np.full((28, 28), 2.0)}, "finite values in \\[0, 1\\]"),
        ({"session_id": ""}, "session id"),
        ({"session_id": "x" * 65}, "session id"),
        ({"probabilities": {1: np.ones(9)}, "model_sha256": {1: "a" * 64}}, "10 numbers"),
        ({"model_sha256": {}}, "checksum"),
    ],
)
def test_bad_input_is_refused_and_nothing_of_the_batch_is_stored(opened, changes, message):
    with pytest.raises(ValueError, match=message):
        opened.save_many([a_drawing(seed=1), a_drawing(seed=2, **changes)])
    assert opened.count() == 0


def test_a_batch_the_database_rejects_halfway_leaves_nothing(opened, monkeypatch):
    # Skip the library's own checks so that the database's CHECK constraint has to refuse label 11.
    monkeypatch.setattr(store, "_check", lambda drawing: None)
    with pytest.raises(StoreError, match="Could not save to"):
        opened.save_many([a_drawing(seed=1), a_drawing(seed=2, label=11)])
    assert opened.count() == 0


def test_each_browser_deletes_only_its_own_drawings(opened):
    mine = [opened.save(a_drawing(seed=s)) for s in range(3)]
    theirs = opened.save(a_drawing(session_id="browser-b"))
    assert not opened.delete(theirs, "browser-a")
    assert opened.delete(mine[0], "browser-a")
    assert not opened.delete(mine[0], "browser-a")  # Already gone.
    assert opened.count("browser-a") == 2 and opened.count() == 3
    assert opened.delete_session("browser-a") == 2
    assert [d.id for d in opened.drawings()] == [theirs]
    # The deleted drawings' answers went with them.
    engine = create_engine(opened.url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM answers")).scalar() == 5
    engine.dispose()


def test_eight_writers_at_once_lose_nothing(opened):
    errors = []

    def write(session: int) -> None:
        try:
            for index in range(5):
                opened.save(
                    a_drawing(label=index, session_id=f"browser-{session}", seed=session * 10 + index)
                )
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(session,)) for session in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    kept = opened.drawings()
    assert len(kept) == 40 and len({d.id for d in kept}) == 40
    assert all(opened.count(f"browser-{session}") == 5 for session in range(8))


def test_opening_creates_the_schema_at_the_newest_migration_and_reopening_keeps_the_data(database_url):
    first = Store(database_url)
    first.save(a_drawing())
    first.close()
    engine = create_engine(database_url)
    assert {"drawings", "answers", "training_jobs", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
    engine.dispose()
    again = Store(database_url)
    assert again.count() == 1
    again.close()


def test_drawings_kept_before_digests_existed_get_theirs_when_the_store_is_upgraded(database_url):
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(store.MIGRATIONS))
    engine = store.create_store_engine(database_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    images = [a_drawing(seed=seed).model_input for seed in range(3)]
    with engine.begin() as connection:
        for image in images:
            connection.execute(
                text(
                    "INSERT INTO drawings (created_at, session_id, label, model_input) "
                    "VALUES (:created, 'browser-a', 3, :image)"
                ),
                {"created": datetime.datetime.now(datetime.UTC), "image": image.tobytes()},
            )
    engine.dispose()
    kept = Store(database_url)
    try:
        assert kept.digests() == [store.input_digest(image) for image in images]
        assert kept.save(a_drawing(seed=7)) == 4 and kept.count() == 4
    finally:
        kept.close()


def test_the_default_store_is_a_sqlite_file_and_the_environment_can_name_another(monkeypatch, tmp_path):
    monkeypatch.delenv(store.DATABASE_URL_ENV_VAR, raising=False)
    assert store.database_url() == f"sqlite:///{store.DEFAULT_DATABASE}"
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'kept.sqlite'}"
    monkeypatch.setenv(store.DATABASE_URL_ENV_VAR, url)
    assert store.open_store() is store.open_store()  # One store, one pool, per URL and process.
    assert store.open_store().url == url and (tmp_path / "elsewhere" / "kept.sqlite").exists()


def test_a_store_that_is_down_says_so_in_one_sentence(postgres_server_url):
    closed = postgres_server_url.rsplit(":", 1)[0] + ":1/postgres"
    with pytest.raises(StoreError, match="Could not open the postgresql drawings store") as failure:
        Store(closed)
    assert "\n" not in str(failure.value)


def test_a_read_only_store_refuses_writes_but_still_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / ".")  # A URI filename must not become a folder named "file:" here.
    path = tmp_path / "drawings.sqlite"
    Store(f"sqlite:///{path}").save(a_drawing())
    read_only = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert read_only.count() == 1
    with pytest.raises(StoreError, match=r"Could not save to the sqlite drawings store: .*readonly"):
        read_only.save(a_drawing())
    assert read_only.count() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawings.sqlite"]


def test_a_url_that_is_not_a_url_is_a_value_error():
    with pytest.raises(ValueError, match="must be an SQLAlchemy database URL"):
        Store("not a url")


def test_arrays_and_accuracy_of_kept_drawings(opened):
    for seed, label in enumerate((0, 5, 9)):
        opened.save(a_drawing(label=label, seed=seed))
    kept = opened.drawings()
    x, y = store.as_arrays(kept)
    assert x.dtype == np.uint8 and x.shape == (3, 28, 28) and y.tolist() == [0, 5, 9]
    assert np.array_equal(x[1], np.rint(kept[1].model_input * 255).astype(np.uint8))
    ids, inputs, labels = opened.labelled_inputs()
    assert ids.tolist() == [d.id for d in kept] and labels.tolist() == [0, 5, 9]
    assert inputs.dtype == np.float32 and all(np.array_equal(i, d.model_input) for i, d in zip(inputs, kept))
    exported = store.export_arrays(kept)
    assert np.array_equal(exported["x"], x) and np.array_equal(exported["y"], y)
    assert exported[store.ID_ARRAY].tolist() == [d.id for d in kept]
    tally = store.accuracy(kept)
    assert set(tally) == {1, 2, 3, 4, 5}
    for model_id, (right, total) in tally.items():
        assert total == 3 and right == sum(d.digit(model_id) == d.label for d in kept)


def test_a_browser_s_kept_drawing_is_found_by_what_it_shows(opened):
    first = a_drawing(label=3, session_id="browser-a", seed=1)
    opened.save(first)
    newest = opened.save(a_drawing(label=8, session_id="browser-a", seed=1))
    assert opened.kept_as("browser-a", first.model_input) == (newest, 8), "the newest of the two"
    assert opened.kept_as("browser-b", first.model_input) is None, "another browser's is not this one's"
    assert opened.kept_as("browser-a", a_drawing(seed=2).model_input) is None
