/* worker.c: worker core (being written). */
int worker_placeholder_(void);
int worker_placeholder_(void) { return 0; }
