"""Tables, figures, disclosure control and rendering of the evaluation report."""
