"""Consultation booking (issue 19): staff publish slots at a ward office's counters; residents book
one in the conversation without giving a name or a phone number, and show the booking number at
the counter.

- `slots.py`: publishing, listing and closing slots (console, CLI) — checked against the
  counter's opening hours, public holidays and the year-end closure.
- `reservations.py`: booking, seeing, changing and cancelling (action server), the free slots to
  offer, the staff's day view and arrived / no-show.
- `reminders.py`: the LINE push the day before a booking (the task worker, hourly).
- `dialogue.py`: the booking conversation (booking_form's validate action and action_bookings,
  actions/bookings.py): what to ask, the quick replies, the refusals, seeing and cancelling.
- `calendar.py`: a booking as an .ics file (the widget's 「カレンダーに追加」).
"""
