"""Episodes per body region (pathway version 2.0, `regions.lines` in the definition).

A patient may be in PT for the back and a knee at once. Each body region (an episode *line*) has
episodes of its own, run by the 1.x engine on one `PatientState` per line (a *lane*); facts go to
the lanes they are attributed to (`attribution`), and PT visits open episodes (`opening`).

- While a patient has one lane, that lane is the whole pathway, exactly as in 1.x: its state
  evaluates the red flags as well (role `WHOLE`). A spine-only patient therefore decides exactly
  what 1.1 decides, and a knee-only patient is a 1.x patient with the knee's rules.
- When a second lane opens, the patient's red flags move to a state of their own (role `FLAGS`),
  evaluated first on every fact, and each lane (role `LANE`) sees the holding red-flag decisions
  mirrored into its state, so an urgent red flag holds the routine steps of every episode.

Episode ids count on across lanes in opening order (`RegionalState.opened`).
"""
