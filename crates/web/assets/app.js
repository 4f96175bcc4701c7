// Rapport behaviour
