app-name = Rapport
