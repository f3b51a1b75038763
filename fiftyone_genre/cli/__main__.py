from fiftyone_genre.cli import run

run()
