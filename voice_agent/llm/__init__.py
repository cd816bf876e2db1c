"""Language-model clients and the guards that keep them inside a turn's budget."""
