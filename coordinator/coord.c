/* coord.c: coordinator core (being written). */
int coord_placeholder_(void);
int coord_placeholder_(void) { return 0; }
