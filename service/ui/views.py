"""The web UI's routes: each reads the request, calls one plain function and renders a template."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from service.access.identity import ADMIN, COORDINATOR
from service.access.policy import READERS
from service.access.token_cache import revocation_delay
from service.api.access import authenticator
from service.api.context import dispatcher, services
from service.problems import Problem
from service.ui import editor, navigation, operations, pathway, patients, worklist
from service.ui.session import (
    Refused,
    actor,
    check_csrf,
    csrf_token,
    current_identity,
    redirect_to,
    requires,
    safe_next,
    sign_in,
    sign_out,
)
from service.usecases import dead_letter_alerts, patient_details
from service.usecases.definitions import versions
from service.usecases.rejected_events import rejected_events

blueprint = Blueprint(
    "ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static", static_url_path="/static"
)
blueprint.before_request(check_csrf)
blueprint.add_app_template_filter(navigation.when, "when")
blueprint.add_app_template_filter(navigation.duration, "duration")
blueprint.add_app_template_filter(navigation.shown, "shown")


UI_ERRORS = {404: "There is no such page in Carepath. Check the address, or start again from the worklist."}

# What the patient page says after its refresh button, by what the EHR answered.
REFRESHED = {
    patient_details.KNOWN: "Read the patient's details from the EHR again.",
    patient_details.UNKNOWN: "The EHR holds no such patient.",
    patient_details.NO_EHR: "No EHR is configured: there is nothing to read the patient's details from.",
    patient_details.NOT_READ: "The EHR did not answer; the details shown are the last it gave.",
}


@blueprint.context_processor
def page_context() -> dict[str, object]:
    identity = current_identity()
    # Every page a coordinator (or administrator) sees carries the urgent decisions the EHR refused.
    undelivered = dead_letter_alerts.banner(services()) if identity and identity.role in READERS else []
    return {
        "identity": identity,
        "nav": navigation.links(identity),
        "csrf_token": csrf_token,
        "undelivered_urgent": undelivered,
    }


@blueprint.errorhandler(Refused)
def refused(error: Refused) -> tuple[str, int]:
    return render_template("error.html", message=error.message, status=error.status), error.status


@blueprint.errorhandler(Problem)
def problem(error: Problem) -> tuple[str, int]:
    return render_template("error.html", message=error.message, status=error.status), error.status


def root() -> Response:
    """`/`: people who type the host name get the UI."""
    return redirect(url_for("ui.home"), code=302)


def favicon() -> Response:
    """`/favicon.ico`, which browsers ask for on their own: the UI's icon."""
    return redirect(url_for("ui.static", filename="favicon.svg"), code=301)


def html_error(error: HTTPException) -> Response | None:
    """A page the UI does not have (404) or a method it does not take (405), as a page inside the UI."""
    if not request.path.startswith(f"{blueprint.url_prefix}/"):
        return None
    status = error.code or 500
    message = UI_ERRORS.get(status, error.description or error.name)
    return make_response(render_template("error.html", message=message, status=status), status)


@blueprint.get("/")
def home() -> Response:
    identity = current_identity()
    if identity is None:
        return redirect_to("ui.sign_in")
    return redirect_to("ui.pathway_page" if identity.role == ADMIN else "ui.worklist_page")


@blueprint.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_page() -> Any:
    """Paste a token (or an OIDC JWT when configured) to start a session."""
    error, status = None, 200
    if request.method == "POST":
        try:
            sign_in(request.form.get("token", ""))
        except Refused as refusal:
            error, status = refusal.message, refusal.status
        else:
            return redirect(safe_next(request.form.get("next")), code=303)
    oidc = services().settings.oidc_issuer
    return render_template("sign_in.html", error=error, oidc=oidc, next=request.values.get("next", "")), status


@blueprint.post("/sign-out")
def sign_out_page() -> Response:
    sign_out()
    return redirect_to("ui.sign_in")


@blueprint.get("/patients")
@requires(*READERS)
def find_patient() -> Response:
    patient_id = request.args.get("id", "").strip().removeprefix("Patient/")
    if not patient_id:
        raise Refused(400, "Enter a patient id.")
    return redirect_to("ui.patient_page", patient_id=patient_id)


@blueprint.get("/patients/<patient_id>")
@requires(*READERS)
def patient_page(patient_id: str) -> str:
    view = patients.patient_view(services(), patient_id, actor(), "/ui/patients/<patient_id>")
    return render_template("patient.html", view=view, patient=view)


@blueprint.get("/tasks/<task_id>")
@requires(*READERS)
def task_page(task_id: str) -> str:
    view = patients.task_view(services(), task_id, actor(), "/ui/tasks/<task_id>")
    identity = current_identity()
    may_work = identity is not None and identity.role == COORDINATOR
    approve = worklist.is_approve(view.task)
    actions = worklist.actions_for(view.task.get("status", ""), may_work, bool(view.task.get("owner")), approve=approve)
    return render_template("task.html", view=view, patient=view.patient, actions=actions)


@blueprint.post("/tasks/<task_id>/notes")
@requires(COORDINATOR)
def task_note(task_id: str) -> Response:
    """Add a note (author and time) to the Task; If-Match is the version the page showed."""
    worklist.add_note(services(), dispatcher(), actor(), task_id, _shown_version(), request.form.get("text", ""))
    flash("Your note is on the Task.")
    return redirect(url_for("ui.task_page", task_id=task_id) + "#notes-heading", code=303)


@blueprint.post("/patients/<patient_id>/refresh")
@requires(*READERS)
def patient_refresh(patient_id: str) -> Response:
    """Read the patient's name and birth date from the EHR again."""
    found = patient_details.refresh(services(), actor(), patient_id)
    flash(REFRESHED.get(found.state, REFRESHED["known"]))
    return redirect(safe_next(request.form.get("next")), code=303)


@blueprint.get("/worklist")
@requires(*READERS)
def worklist_page() -> str:
    identity = current_identity()
    assert identity is not None  # `requires` let only a signed-in person through
    filters = worklist.Filters.of(request.args)
    found = worklist.page(services(), identity, filters, "/ui/worklist")
    kept = {k: v for k, v in request.args.items() if k != "offset"}
    return render_template("worklist.html", page=found, choices=worklist.CHOICES, filters_args=kept)


@blueprint.post("/tasks/<task_id>/act")
@requires(COORDINATOR)
def task_action(task_id: str) -> Response:
    """Claim, Done, accept, start, complete, reject or cancel; If-Match is the version the page showed."""
    action, reason = request.form.get("action", ""), request.form.get("reason", "")
    status = worklist.act(services(), dispatcher(), actor(), task_id, _shown_version(), action, reason)
    flash(f"The Task is now {status}.")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/ui/") else url_for("ui.task_page", task_id=task_id), code=303)


def _shown_version() -> int:
    """The Task version the form was rendered with: the change is refused if someone moved the Task since."""
    version = request.form.get("version", "")
    if not version.isdigit():
        raise Refused(400, "The form lost the Task's version; reload the page and try again.")
    return int(version)


@blueprint.get("/pathway")
@requires(ADMIN)
def pathway_page() -> str:
    overview = pathway.overview(services(), request.args.get("version"))
    return render_template("pathway.html", overview=overview, upload=None, source="", simulation=None)


@blueprint.post("/pathway/upload")
@requires(ADMIN)
def pathway_upload() -> Any:
    """Store a new draft; a refusal re-renders the page with each line, path and reason next to the text."""
    source = _sent_text("file", "source")
    result = pathway.upload(services(), source, actor())
    if result.version is not None:
        flash(f"Uploaded {result.version.version} as a draft. Review its diagram and diff, then publish it.")
        return redirect_to("ui.pathway_page", version=result.version.reference)
    overview = pathway.overview(services(), None)
    page = render_template("pathway.html", overview=overview, upload=result, source=source, simulation=None)
    return page, 422


def _sent_text(file_field: str, text_field: str) -> str:
    """The text of the file chosen in `file_field`, else what was pasted in `text_field`."""
    file = request.files.get(file_field)
    if file and file.filename:
        return str(file.read().decode("utf-8", errors="replace"))
    return request.form.get(text_field, "")


@blueprint.get("/pathway/publish")
@requires(ADMIN)
def pathway_publish_confirm() -> str:
    """Ask before publishing: which version it retires, and what changes from it."""
    publication = versions.preview_publication(services(), request.args.get("version", ""))
    return render_template("publish.html", publication=publication)


@blueprint.post("/pathway/publish")
@requires(ADMIN)
def pathway_publish() -> Response:
    publication = versions.preview_publication(services(), request.form.get("reference", ""))
    version = versions.publish(services(), publication.version.reference, actor())
    retired = f" It retired {publication.retires.version}." if publication.retires else ""
    flash(f"Published {version.version}: new patients start on it; enrolled patients stay where they are.{retired}")
    return redirect_to("ui.pathway_page", version=version.reference)


@blueprint.post("/pathway/retire")
@requires(ADMIN)
def pathway_retire() -> Response:
    version = versions.retire(services(), request.form.get("reference", ""), actor())
    flash(f"Retired {version.version}: no new enrolments; patients on it stay on it.")
    return redirect_to("ui.pathway_page", version=version.reference)


@blueprint.get("/pathway/source")
@requires(ADMIN)
def pathway_source() -> str:
    """A version's YAML, numbered line by line."""
    version, text = pathway.source(services(), request.args.get("version", ""))
    return render_template("source.html", version=version, numbered=pathway.numbered(text))


@blueprint.get("/pathway/source.yaml")
@requires(ADMIN)
def pathway_source_download() -> Response:
    """A version's YAML as a file, exactly as uploaded (or shipped)."""
    version, text = pathway.source(services(), request.args.get("version", ""))
    response = make_response(text)
    response.mimetype = "application/yaml"
    response.headers["Content-Disposition"] = f'attachment; filename="{pathway.file_name(version)}"'
    return response


@blueprint.get("/editor-lines.svg")
def editor_lines() -> Response:
    """The line numbers drawn beside the definition editor: an image without patient data, made once per process."""
    response = make_response(editor.gutter_svg())
    response.mimetype = "image/svg+xml"
    return response


@blueprint.get("/pathway/diff")
@requires(ADMIN)
def pathway_diff() -> str:
    reference = request.args.get("version", "")
    changes = pathway.migration_diff(services(), reference, actor(), "/ui/pathway/diff")
    return render_template("diff.html", reference=reference, changes=changes)


@blueprint.post("/pathway/migrate")
@requires(ADMIN)
def pathway_migrate() -> Response:
    """Move the patients the diff listed (and the administrator kept ticked) to the version; audited per patient."""
    reference, patient_ids = request.form.get("reference", ""), request.form.getlist("patient")
    if not patient_ids:
        raise Refused(400, "Tick the patients to migrate.")
    moved = versions.migrate(services(), reference, patient_ids, actor())
    flash(f"Migrated {len(moved)} of {len(patient_ids)} patient{'s' if len(patient_ids) != 1 else ''} to {reference}.")
    return redirect_to("ui.pathway_diff", version=reference)


@blueprint.post("/pathway/simulate")
@requires(ADMIN)
def pathway_simulate() -> Any:
    """Replay a Bundle up to a date and list what would have been proposed; a refusal keeps the form as sent."""
    text = _sent_text("bundle", "bundle_text")
    reference, moment = request.form.get("reference", ""), request.form.get("date", "")
    simulation = pathway.simulate(services(), reference, text, moment, actor())
    overview = pathway.overview(services(), reference or None)
    page = render_template("pathway.html", overview=overview, upload=None, source="", simulation=simulation)
    return page, 422 if simulation.error else 200


@blueprint.get("/admin/dead-letters")
@requires(ADMIN)
def dead_letters_page() -> str:
    letters = operations.dead_letters(services(), actor(), "/ui/admin/dead-letters")
    return render_template("dead_letters.html", letters=letters)


@blueprint.get("/admin/rejected-events")
@requires(ADMIN)
def rejected_events_page() -> str:
    found = rejected_events(services(), actor(), "GET /ui/admin/rejected-events")
    return render_template("rejected_events.html", events=found)


@blueprint.post("/admin/dead-letters/replay")
@requires(ADMIN)
def dead_letters_replay() -> Response:
    one = request.form.get("decision_id")
    if one is not None and not one.isdigit():
        raise Refused(400, "Choose a dead letter to replay.")
    count = operations.replay(services(), dispatcher(), actor(), [int(one)] if one else None)
    flash(f"Queued {count} deliver{'y' if count == 1 else 'ies'} again.")
    return redirect_to("ui.dead_letters_page")


@blueprint.post("/dead-letters/<row_id:decision_id>/dismiss")
@requires(*READERS)
def dead_letter_dismiss(decision_id: int) -> Response:
    """Take an urgent dead letter off the banner (audited); it stays in the dead letters for a replay."""
    if dead_letter_alerts.dismiss(services(), actor(), decision_id) is None:
        raise Refused(404, f"Decision {decision_id} is not on the banner (already replayed or dismissed?).")
    flash(f"Dismissed the alert of decision {decision_id}; it stays in the dead letters until replayed.")
    return redirect(safe_next(request.form.get("next")), code=303)


@blueprint.get("/admin/tokens")
@requires(ADMIN)
def tokens_page() -> str:
    return render_template("tokens.html", tokens=operations.all_tokens(services()), created=None, error=None)


@blueprint.post("/admin/tokens")
@requires(ADMIN)
def tokens_create() -> Any:
    """Issue a token and show it on this one answer only (never cached, never stored)."""
    svc = services()
    try:
        created = operations.create_token(svc, actor(), request.form.get("name", ""), request.form.get("role", ""))
    except Problem as refusal:
        page = render_template("tokens.html", tokens=operations.all_tokens(svc), created=None, error=refusal.message)
        return page, 422
    response = make_response(render_template("tokens.html", tokens=operations.all_tokens(svc), created=created))
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/admin/tokens/<row_id:token_id>/revoke")
@requires(ADMIN)
def tokens_revoke(token_id: int) -> Response:
    svc = services()
    record = operations.revoke_token(svc, actor(), token_id)
    authenticator().forget(token_id)
    delay = revocation_delay(svc.settings)
    flash(f"Token {record.id} ({record.name}) is revoked; its web UI sessions have ended. {delay}")
    return redirect_to("ui.tokens_page")


@blueprint.get("/admin/subscriptions")
@requires(ADMIN)
def subscriptions_page() -> str:
    return render_template("subscriptions.html", subscriptions=operations.subscriptions(services()))


@blueprint.post("/admin/subscriptions/<subscription_id>/retire")
@requires(ADMIN)
def subscriptions_retire(subscription_id: str) -> Response:
    operations.retire_subscription(services(), actor(), subscription_id)
    flash(f"Subscription {subscription_id} is retired: Carepath no longer tracks it and refuses its notifications.")
    return redirect_to("ui.subscriptions_page")
