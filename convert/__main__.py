from convert.cli import app

app(prog_name="python -m convert")
