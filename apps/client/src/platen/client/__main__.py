from platen.client.main import run

run()
