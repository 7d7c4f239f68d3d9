/*  test_outbox.c - the worker's results awaiting ACK: keyed by (id, attempt), resends in send order, backlog  */
#include "worker/outbox.h"
#include <criterion/criterion.h>
#include <string.h>

#define S_RESEND 2000

//  A result the caller owns, of a fresh id (or of id's, when given).
static jr_job_t *
s_job (const jr_job_t *same_id, uint32_t attempt)
{
    jr_job_t job;
    jr_job_init (&job, "echo");
    if (same_id)
        memcpy (job.id, same_id->id, JR_ID_SIZE);
    job.attempt = attempt;
    jr_job_t *copy = jr_job_dup (&job);
    cr_assert (copy);
    return copy;
}

Test (outbox, an_ack_settles_only_its_own_attempt_once)
{
    jr_outbox_t *outbox = jr_outbox_new (S_RESEND, 100);
    jr_job_t *first = s_job (NULL, 1), *second = s_job (first, 2);
    cr_assert_null (jr_outbox_add (outbox, first));
    cr_assert_null (jr_outbox_add (outbox, second), "another attempt is another result");
    cr_assert_eq (jr_outbox_size (outbox), 2);
    cr_assert (jr_outbox_has (outbox, first->id, 1));
    cr_assert_not (jr_outbox_has (outbox, first->id, 3));
    jr_job_t *taken = jr_outbox_take (outbox, first->id, 1);
    cr_assert_eq (taken, first, "the caller gets the very job back, not a copy");
    jr_job_destroy (&taken);
    cr_assert_null (jr_outbox_take (outbox, second->id, 1), "a second ACK finds nothing");
    cr_assert (jr_outbox_has (outbox, second->id, 2), "the stale ACK left the newer attempt");
    cr_assert_eq (jr_outbox_size (outbox), 1);
    jr_outbox_destroy (&outbox);  //  frees what it still holds (ASan sees a leak)
    cr_assert_null (outbox);
    jr_outbox_destroy (&outbox);
}

Test (outbox, the_same_attempt_twice_returns_the_older)
{
    jr_outbox_t *outbox = jr_outbox_new (S_RESEND, 100);
    jr_job_t *older = s_job (NULL, 1), *newer = s_job (older, 1);
    cr_assert_null (jr_outbox_add (outbox, older));
    jr_job_t *replaced = jr_outbox_add (outbox, newer);
    cr_assert_eq (replaced, older);
    jr_job_destroy (&replaced);
    cr_assert_eq (jr_outbox_size (outbox), 1);
    bool resend = true;
    cr_assert_eq (jr_outbox_next (outbox, 10, &resend), newer);
    cr_assert_not (resend);
    cr_assert_null (jr_outbox_next (outbox, 10, &resend));
    jr_outbox_destroy (&outbox);
}

Test (outbox, fresh_go_once_then_resends_fall_due_in_send_order)
{
    jr_outbox_t *outbox = jr_outbox_new (S_RESEND, 100);
    cr_assert_not (jr_outbox_due (outbox, 0));
    cr_assert_eq (jr_outbox_resend_at (outbox), 0);
    jr_job_t *a = s_job (NULL, 1), *b = s_job (NULL, 1), *c = s_job (NULL, 1);
    jr_outbox_add (outbox, a);
    jr_outbox_add (outbox, b);
    cr_assert (jr_outbox_due (outbox, 100));
    bool resend = true;
    cr_assert_eq (jr_outbox_next (outbox, 100, &resend), a);
    cr_assert_not (resend);
    cr_assert_eq (jr_outbox_next (outbox, 100, &resend), b);
    cr_assert_null (jr_outbox_next (outbox, 100, &resend), "each goes once");
    cr_assert_not (jr_outbox_due (outbox, 100 + S_RESEND - 1));
    cr_assert_eq (jr_outbox_resend_at (outbox), 100 + S_RESEND);
    jr_outbox_add (outbox, c);  //  fresh, while a and b wait for their ACK
    cr_assert (jr_outbox_due (outbox, 150));
    cr_assert_eq (jr_outbox_next (outbox, 150, &resend), c);
    cr_assert_null (jr_outbox_next (outbox, 150, &resend));
    //  At a's and b's resend time: those two again, resends first, and c not yet.
    int64_t now = 100 + S_RESEND;
    cr_assert (jr_outbox_due (outbox, now));
    cr_assert_eq (jr_outbox_next (outbox, now, &resend), a);
    cr_assert (resend);
    cr_assert_eq (jr_outbox_next (outbox, now, &resend), b);
    cr_assert (resend);
    cr_assert_null (jr_outbox_next (outbox, now, &resend), "c was sent at 150");
    cr_assert_eq (jr_outbox_resend_at (outbox), 150 + S_RESEND, "c is now the oldest send");
    //  An ACK of the oldest moves the resend time on.
    jr_job_t *taken = jr_outbox_take (outbox, c->id, 1);
    jr_job_destroy (&taken);
    cr_assert_eq (jr_outbox_resend_at (outbox), now + S_RESEND);
    jr_outbox_destroy (&outbox);
}

Test (outbox, resends_go_before_fresh_results)
{
    jr_outbox_t *outbox = jr_outbox_new (S_RESEND, 100);
    jr_job_t *old = s_job (NULL, 1), *fresh = s_job (NULL, 1);
    bool resend;
    jr_outbox_add (outbox, old);
    cr_assert_eq (jr_outbox_next (outbox, 0, &resend), old);
    jr_outbox_add (outbox, fresh);
    cr_assert_eq (jr_outbox_next (outbox, S_RESEND, &resend), old);
    cr_assert (resend);
    cr_assert_eq (jr_outbox_next (outbox, S_RESEND, &resend), fresh);
    cr_assert_not (resend);
    jr_outbox_destroy (&outbox);
}

Test (outbox, full_at_the_backlog_and_pop_empties_it_fresh_first)
{
    jr_outbox_t *outbox = jr_outbox_new (S_RESEND, 3);
    jr_job_t *sent = s_job (NULL, 1), *f1 = s_job (NULL, 1), *f2 = s_job (NULL, 1);
    bool resend;
    jr_outbox_add (outbox, sent);
    jr_outbox_next (outbox, 0, &resend);
    jr_outbox_add (outbox, f1);
    cr_assert_not (jr_outbox_full (outbox));
    jr_outbox_add (outbox, f2);
    cr_assert (jr_outbox_full (outbox));
    jr_job_t *order[3];
    for (int i = 0; i < 3; i++)
        order[i] = jr_outbox_pop (outbox);
    cr_assert_eq (order[0], f1);
    cr_assert_eq (order[1], f2);
    cr_assert_eq (order[2], sent);
    cr_assert_null (jr_outbox_pop (outbox));
    cr_assert_eq (jr_outbox_size (outbox), 0);
    cr_assert_not (jr_outbox_full (outbox));
    cr_assert_not (jr_outbox_due (outbox, 10 * S_RESEND), "nothing left to send");
    for (int i = 0; i < 3; i++)
        jr_job_destroy (&order[i]);
    jr_outbox_destroy (&outbox);
}
