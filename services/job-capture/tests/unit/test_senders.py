"""Who may submit a job, ask about it and report on it: the pure rules."""

from platen.job_capture.senders import NO_SENDER, Sender, refuse_access, refuse_submission

A = Sender("platen-print-server.print-a")
B = Sender("platen-print-server.print-b")
ADMIN = Sender("platen-admin")
NOBODY = Sender(None)


def test_a_print_server_submits_cups_jobs_only():
    assert refuse_submission(A, "cups") is None
    assert refuse_submission(A, "api") == "a print server submits CUPS jobs only"


def test_only_a_print_server_submits_cups_jobs_and_the_admin_submits_api_jobs():
    assert refuse_submission(ADMIN, "api") is None
    assert refuse_submission(ADMIN, "cups") == "only a print server submits CUPS jobs"


def test_a_request_that_does_not_say_who_sends_it_is_refused():
    """Else a print server could leave out its user_id and pass for an administrator."""
    assert refuse_submission(NOBODY, "api") == NO_SENDER
    assert refuse_submission(NOBODY, "cups") == NO_SENDER
    assert refuse_access(NOBODY, None) == NO_SENDER
    assert refuse_access(NOBODY, "print-a") == NO_SENDER


def test_a_print_server_touches_only_its_own_jobs():
    assert refuse_access(A, "print-a") is None
    assert refuse_access(A, "print-b") is not None
    assert refuse_access(B, "print-a") is not None
    assert refuse_access(A, None) is not None  # an API job is no print server's


def test_the_administrator_may_ask_about_any_job():
    assert refuse_access(ADMIN, "print-a") is None
    assert refuse_access(ADMIN, None) is None


def test_the_print_server_is_read_from_a_prefixed_broker_user():
    assert Sender("test-platen-print-server.lab.example.org").print_server == "lab.example.org"
    assert Sender("alice").print_server is None
    assert Sender("platen-job-capture").print_server is None
