"""The model a search was for: trained at the chosen depth, self-contained, with its evidence.

``choice`` picks the depth from a study's answer, ``serving`` wraps the
trained layers into a model that takes raw images, ``card`` writes it with
its model card in one file (safely), ``train`` runs the study's protocol once
more, and ``predict`` reads images and applies an exported model.
"""
