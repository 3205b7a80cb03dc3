from edge.cli import app

app(prog_name="python -m edge")
