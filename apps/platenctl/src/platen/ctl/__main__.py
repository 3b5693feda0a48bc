from platen.ctl.main import app

app(prog_name="platenctl")
